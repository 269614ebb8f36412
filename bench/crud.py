"""CRUD benchmark (issue 2): the FHIR API under uvicorn on a fresh embedded database, over HTTP.

    .venv/bin/python bench/crud.py [--clients 16] [--patients 3000] [--seconds 10] [--workers N]
                                   [--configs store,sync,async]

Prints creates/s, reads/s, updates/s with p50/p99 latency for Patient and Observation, and, on the
same payloads in the same run, the in-process ``fhir.resources`` validation rate and the ratio of
create rate to validation rate. Side by side on fresh servers: the store with the patient index
off, the full platform linking Patients in the write transaction, and the full platform linking
them in the background worker; for the latter it waits after the Patient creates until every
Patient is linked and prints that lag.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from httpload import Result, request_bytes, run
from phixserver import CpuMeter, Server

SURNAMES = "陈林黄郑吴王李张刘蔡"
STREETS = ["梅园路", "胜利路", "文献路", "荔园路", "延寿街", "英龙街", "东园路", "学园路"]
GIVEN = ["伟", "娜", "明", "芳", "志强", "秀英", "建华", "丽华", "文", "静"]


def patient(i: int, rng: random.Random) -> dict[str, object]:
    family, given = rng.choice(SURNAMES), rng.choice(GIVEN)
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": "https://fhir.putian.gov.cn/NamingSystem/ptsyy/mrn", "value": f"MRN{i:08d}"},
        ],
        "active": True,
        "name": [{"use": "official", "text": family + given, "family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": f"139{rng.randrange(10**8):08d}", "use": "mobile"}],
        "gender": rng.choice(["male", "female"]),
        "birthDate": f"{rng.randrange(1930, 2024)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        "address": [
            # Households differ (one address shared by every record would put them all in one
            # patient-index block; see the issue-5 note).
            {
                "district": "荔城区",
                "city": "莆田市",
                "state": "福建省",
                "line": [f"镇海街道 {rng.choice(STREETS)} {rng.randrange(1, 400)} 号"],
            }
        ],
    }


def observation(i: int, patient_id: str, rng: random.Random) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": f"2026-{rng.randrange(1, 12):02d}-{rng.randrange(1, 28):02d}T08:30:00+08:00",
        "valueQuantity": {
            "value": rng.randrange(50, 120),
            "unit": "beats/minute",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def validation_rate(payloads: list[dict[str, object]]) -> float:
    from phix.fhir.validation import validate

    for p in payloads[:50]:
        validate(str(p["resourceType"]), p)  # warm caches
    started = time.perf_counter()
    for p in payloads:
        validate(str(p["resourceType"]), p)
    return len(payloads) / (time.perf_counter() - started)


async def drive(port: int, args: argparse.Namespace, checkpoint: Callable[[bool], None]) -> list[Result]:
    """The four phases; ``checkpoint(patients_written)`` after each (waits for the patient index
    after Patient writes, samples the CPU meter)."""
    host = f"127.0.0.1:{port}"
    rng = random.Random(7)
    json_headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
    patients = [orjson.dumps(patient(i, rng)) for i in range(args.patients)]
    results: list[Result] = []

    # Creates of Patient (Location header carries the id with Prefer: return=minimal; ask for the body
    # instead so ids can be read back cheaply).
    create_headers = {"Content-Type": "application/fhir+json"}
    res = await run(
        "create Patient",
        "127.0.0.1",
        port,
        lambda i: request_bytes("POST", "/fhir/Patient", host, patients[i], create_headers),
        total=len(patients),
        concurrency=args.clients,
        keep_bodies=True,
    )
    results.append(res)
    await asyncio.to_thread(checkpoint, True)
    ids = [orjson.loads(b)["id"] for b in res.bodies]
    observations = [orjson.dumps(observation(i, ids[i % len(ids)], rng)) for i in range(args.patients)]
    res = await run(
        "create Observation",
        "127.0.0.1",
        port,
        lambda i: request_bytes("POST", "/fhir/Observation", host, observations[i], json_headers),
        total=len(observations),
        concurrency=args.clients,
    )
    results.append(res)
    await asyncio.to_thread(checkpoint, False)
    read_paths = [f"/fhir/Patient/{rng.choice(ids)}" for _ in range(100_000)]
    results.append(
        await run(
            "read Patient",
            "127.0.0.1",
            port,
            lambda i: request_bytes("GET", read_paths[i % len(read_paths)], host),
            duration=args.seconds,
            concurrency=args.clients,
        )
    )
    await asyncio.to_thread(checkpoint, False)

    # Updates: each client updates distinct patients (no lock contention between clients).
    def update_request(i: int) -> bytes:
        pid = ids[i % len(ids)]
        body = patient(i % len(ids), random.Random(i))
        body["id"] = pid
        return request_bytes("PUT", f"/fhir/Patient/{pid}", host, orjson.dumps(body), json_headers)

    results.append(
        await run(
            "update Patient",
            "127.0.0.1",
            port,
            update_request,
            duration=args.seconds,
            concurrency=args.clients,
        )
    )
    await asyncio.to_thread(checkpoint, True)
    return results


CONFIGS = {
    # name: (extra environment, description)
    "store": ({"PHIX_DISABLED_DOMAINS": '["mpi"]'}, "store + search index (patient index off)"),
    "sync": ({"PHIX_MPI__LINKING": "sync"}, "full platform, Patients linked in the write transaction"),
    "async": ({"PHIX_MPI__LINKING": "async"}, "full platform, Patients linked by the worker (default)"),
}


def wait_linked(dsn: str) -> float:
    """Seconds until the patient index has linked every queued Patient write (``mpi_pending``
    empty), polled every 20 ms on one connection."""
    import asyncpg

    async def wait() -> float:
        started = time.perf_counter()
        conn = await asyncpg.connect(dsn)
        try:
            if await conn.fetchval("SELECT to_regclass('mpi_pending') IS NOT NULL"):
                while await conn.fetchval("SELECT EXISTS (SELECT 1 FROM mpi_pending)"):
                    await asyncio.sleep(0.02)
        finally:
            await conn.close()
        return time.perf_counter() - started

    return asyncio.run(wait())


@dataclass
class Phase:
    result: Result
    lag: float  # seconds the patient index still needed after the last answer of the phase
    cpu: dict[str, float]  # CpuMeter.delta over the phase and the lag

    @property
    def cpu_ms(self) -> float:
        """Server CPU (phix workers + PostgreSQL) per request, linking included."""
        n = len(self.result.latencies)
        return 1000 * (self.cpu["phix"] + self.cpu["postgres"]) / n if n else float("nan")


def run_config(name: str, args: argparse.Namespace) -> list[Phase]:
    """One fresh server with the configuration's environment, the four phases measured."""
    tmp = Path(tempfile.mkdtemp(prefix="phix-bench-"))
    lags: list[float] = []
    cpus: list[dict[str, float]] = []
    try:
        server = Server(tmp / "data", args.workers, [], CONFIGS[name][0])
        try:
            meter = CpuMeter(server)
            mark = [meter.sample()]

            def checkpoint(patients_written: bool) -> None:
                lags.append(wait_linked(server.dsn) if patients_written else 0.0)
                now = meter.sample()
                cpus.append(CpuMeter.delta(mark[0], now))
                mark[0] = now

            results = asyncio.run(drive(server.port, args, checkpoint))
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [Phase(r, lag, cpu) for r, lag, cpu in zip(results, lags, cpus, strict=True)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--patients", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated, run one after the other on fresh servers: {', '.join(CONFIGS)}",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = set(names) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configuration(s): {sorted(unknown)}")

    rng = random.Random(7)
    sample = [patient(i, rng) for i in range(2000)] + [observation(i, "x", rng) for i in range(2000)]
    vrate = validation_rate(sample)
    print(
        f"phix CRUD benchmark: {args.workers} uvicorn workers, {args.clients} clients,"
        f" cores={os.cpu_count()}, load average at start {os.getloadavg()[0]:.2f}"
    )
    print(f"in-process validation (1 core, same payloads): {vrate:,.0f} resources/s")
    for name in names:
        phases = run_config(name, args)
        print(f"\n[{name}] {CONFIGS[name][1]}")
        for ph in phases:
            linked = f"  linked {ph.lag:.2f} s later" if ph.lag >= 0.05 else ""
            print(
                f"{ph.result.line()}  server CPU {ph.cpu_ms:.2f} ms/req"
                f" (max {2000 / ph.cpu_ms if ph.cpu_ms else 0:,.0f}/s on {os.cpu_count()} idle cores){linked}"
            )
        creates = phases[0], phases[1]
        done = sum(len(p.result.latencies) for p in creates)
        create_rate = done / sum(p.result.elapsed + p.lag for p in creates)
        cpu_ms = sum(1000 * (p.cpu["phix"] + p.cpu["postgres"]) for p in creates) / done
        print(
            f"creates {create_rate:,.0f}/s overall, Patients linked included; server CPU {cpu_ms:.2f} ms per"
            f" create; create rate / validation rate {create_rate / vrate:.2f};"
            f" load average {os.getloadavg()[0]:.2f}"
        )
    print("\ntargets: reads >= 1500/s, creates >= 600/s, p99 read < 20 ms at 16 clients")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
