"""DICOM gateway benchmark: receive throughput vs DCMTK storescp, and routing latency.

    .venv/bin/python bench/dicom.py [--instances 300] [--rounds 3] [--study 200] [--compare-tuning]

1. **Receive throughput.** The same sender (DCMTK ``storescu``, one association, TCP_NODELAY=1)
   sends the same data (``--instances`` CT images of ~39 kB, fresh UIDs per round) to DCMTK
   ``storescp`` and to the gateway (``phix gateway`` as a separate process, as deployed: fsync per
   instance, indexing in a worker process, ImagingStudy written at the end), alternating for
   ``--rounds`` rounds. Reported: instances/s of each and the ratio (target >= 0.5).
2. **End-to-end latency.** A ``--study``-instance study is sent by a grassroots AE whose rule
   routes it to an Orthanc reading site (REST upload); measured from storescu's last response to
   the moment the site holds every instance (polling its REST API every 50 ms). Target <= 10 s.

Uses an embedded PostgreSQL in a temporary directory unless PHIX_DATABASE_URL is set. Writes
bench/out/dicom.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[1]
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
ENV = {**os.environ, "TCP_NODELAY": "1"}

ROUTING = """
sites:
  - {{name: reading, transport: {transport}, url: "http://127.0.0.1:{http}", ae_title: READING,
      host: 127.0.0.1, port: {dicom}}}
institutions:
  - {{code: bench, ae_titles: [BENCH_CT]}}
  - {{code: clinic, ae_titles: [CLINIC_CT]}}
rules:
  - {{name: clinic-to-reading, when: {{institutions: [clinic]}}, send_to: [reading]}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_series(folder: Path, count: int) -> tuple[str, list[Path]]:
    source = get_testdata_file("CT_small.dcm", download=False)
    assert source is not None
    template = pydicom.dcmread(source)
    folder.mkdir(parents=True)
    study, series = generate_uid(), generate_uid()
    template.StudyInstanceUID, template.SeriesInstanceUID = study, series
    template.PatientID = "BENCH-" + uuid.uuid4().hex[:8]
    paths = []
    for n in range(count):
        sop = generate_uid()
        template.SOPInstanceUID = sop
        template.file_meta.MediaStorageSOPInstanceUID = sop
        template.InstanceNumber = n + 1
        path = folder / f"{n:04d}.dcm"
        template.save_as(path, enforce_file_format=True)
        paths.append(path)
    return study, paths


def storescu(port: int, calling: str, called: str, folder: Path) -> float:
    """Send a folder over one association; seconds from start to the last response."""
    started = time.perf_counter()
    done = subprocess.run(
        ["storescu", "+sd", "-aet", calling, "-aec", called, "127.0.0.1", str(port), str(folder)],
        env=ENV,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"storescu failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def wait_echo(port: int, calling: str, called: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = subprocess.run(
            ["echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(port)], env=ENV, capture_output=True
        )
        if ok.returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"nothing answers C-ECHO on port {port}")


class Storescp:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.out = root / "storescp"
        self.out.mkdir()
        self.proc = subprocess.Popen(
            ["storescp", "-aet", "STORESCP", "-od", str(self.out), str(self.port)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_echo(self.port, "BENCH_CT", "STORESCP")
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


class Orthanc:
    def __init__(self, root: Path) -> None:
        self.http, self.dicom = free_port(), free_port()
        storage = root / "orthanc"
        storage.mkdir()
        env = {
            **ENV,
            "ORTHANC_NAME": "bench-reading",
            "ORTHANC_AET": "READING",
            "ORTHANC_HTTP_PORT": str(self.http),
            "ORTHANC_DICOM_PORT": str(self.dicom),
            "ORTHANC_STORAGE": str(storage),
            "ORTHANC_DICOMWEB_PLUGIN": DICOMWEB_PLUGIN,
        }
        log = open(root / "orthanc.log", "wb")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            ["Orthanc", str(REPO / "dicom" / "orthanc-site.json")], env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.http}/system", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Orthanc did not start")

    def count(self, study_uid: str) -> int:
        found = httpx.post(
            f"http://127.0.0.1:{self.http}/tools/find",
            json={"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}},
            timeout=10,
        )
        return len(found.json())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


class Gateway:
    def __init__(self, root: Path, dsn: str, rules: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = root / f"gateway-{self.port}.log"
        env = {
            **ENV,
            "PHIX_DATABASE_URL": dsn,
            "PHIX_LOG_LEVEL": "WARNING",
            "PHIX_DICOM__PORT": str(self.port),
            "PHIX_DICOM__RULES_FILE": str(rules),
            "PHIX_DICOM__STORAGE_DIR": str(root / f"store-{self.port}"),
            **(extra_env or {}),
        }
        out = open(self.log, "wb")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "phix.dicom.cli", "gateway", "--data-dir", str(root)],
            env=env,
            stdout=out,
            stderr=out,
        )
        try:
            wait_echo(self.port, "BENCH_CT", "PHIX")
        except RuntimeError:
            self.proc.kill()
            self.proc.wait()
            raise

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _create_database(admin_dsn: str) -> str:
    name = f"phix_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(admin_dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _breakdown(dsn: str, study_uid: str) -> dict[str, float | None]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT s.last_received_at, s.completed_at, r.delivered_at, r.created_at"
            " FROM dicom_studies s LEFT JOIN dicom_routes r USING (study_instance_uid)"
            " WHERE s.study_instance_uid = $1",
            study_uid,
        )
    finally:
        await conn.close()
    if row is None or row["completed_at"] is None:
        return {}

    def span(a: str, b: str) -> float | None:
        return None if row[a] is None or row[b] is None else round((row[b] - row[a]).total_seconds(), 3)

    return {
        "last_received_to_complete_s": span("last_received_at", "completed_at"),
        "complete_to_delivered_s": span("completed_at", "delivered_at"),
    }


async def _wait_complete(dsn: str, study_uid: str, timeout: float = 120) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = await conn.fetchval(
                "SELECT state FROM dicom_studies WHERE study_instance_uid = $1", study_uid
            )
            if state == "complete":
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise RuntimeError(f"study {study_uid} not complete within {timeout} s")


def throughput(args: argparse.Namespace, root: Path, dsn: str, rules: Path) -> dict[str, object]:
    rounds: list[dict[str, float]] = []
    variants: dict[str, dict[str, str]] = {"gateway": {}}
    if args.compare_tuning:
        variants["gateway, pynetdicom defaults"] = {
            "PHIX_DICOM__DUL_LOOP_DELAY": "0.001",
            "PHIX_DICOM__ASSOC_LOOP_DELAY": "0.001",
            "PHIX_DICOM__TCP_NODELAY": "false",
            "PHIX_DICOM__FAST_STORE_RESPONSE": "false",
        }
    scp = Storescp(root)
    gateways: dict[str, Gateway] = {}
    try:
        for name, env in variants.items():
            gateways[name] = Gateway(root, dsn, rules, env)
        for n in range(args.rounds):
            order = ["storescp", *variants]
            if n % 2:
                order.reverse()  # alternate who goes first
            result: dict[str, float] = {}
            for name in order:
                folder = root / f"round-{n}-{len(result)}"
                study, _ = make_series(folder, args.instances)  # fresh UIDs: never duplicates
                if name == "storescp":
                    result[name] = args.instances / storescu(scp.port, "BENCH_CT", "STORESCP", folder)
                    shutil.rmtree(scp.out)
                    scp.out.mkdir()
                else:
                    result[name] = args.instances / storescu(gateways[name].port, "BENCH_CT", "PHIX", folder)
                    asyncio.run(_wait_complete(dsn, study))  # no background work left for the next one
                shutil.rmtree(folder)
            rounds.append(result)
            print("  round", n + 1, "  ".join(f"{k}: {v:.0f}/s" for k, v in result.items()), flush=True)
    finally:
        scp.stop()
        for gateway in gateways.values():
            gateway.stop()
    summary: dict[str, object] = {"rounds": [{k: round(v, 1) for k, v in r.items()} for r in rounds]}
    for name in ["storescp", *variants]:
        summary[f"{name} median inst/s"] = round(statistics.median(r[name] for r in rounds), 1)
    for name in variants:
        summary[f"{name} / storescp"] = round(statistics.median(r[name] / r["storescp"] for r in rounds), 3)
    summary["ratio"] = summary["gateway / storescp"]
    return summary


def latency(args: argparse.Namespace, root: Path, dsn: str, rules: Path, site: Orthanc) -> dict[str, object]:
    gateway = Gateway(root, dsn, rules)
    try:
        study, _ = make_series(root / "study", args.study)
        storescu(gateway.port, "CLINIC_CT", "PHIX", root / "study")
        last_response = time.perf_counter()
        deadline = last_response + 120
        while site.count(study) < args.study:
            if time.perf_counter() > deadline:
                raise RuntimeError("the study did not reach the site within 120 s")
            time.sleep(0.05)
        seconds = time.perf_counter() - last_response
        details = asyncio.run(_breakdown(dsn, study))
    finally:
        gateway.stop()
    return {"instances": args.study, "seconds": round(seconds, 3), **details}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--study", type=int, default=200)
    parser.add_argument("--transport", choices=["orthanc-rest", "c-store"], default="orthanc-rest")
    parser.add_argument(
        "--compare-tuning", action="store_true", help="also run a gateway with pynetdicom defaults"
    )
    args = parser.parse_args()
    for tool in ("storescu", "storescp", "echoscu", "Orthanc"):
        if shutil.which(tool) is None:
            print(
                f"{tool} is not installed (apt-get install dcmtk orthanc orthanc-dicomweb)", file=sys.stderr
            )
            return 2

    root = Path(tempfile.mkdtemp(prefix="phix-bench-dicom-"))
    embedded = None
    try:
        admin = os.environ.get("PHIX_DATABASE_URL")
        if not admin:
            from phix.storage.embedded import EmbeddedPostgres

            embedded = EmbeddedPostgres(root / "pg-home")
            admin = embedded.start()
        dsn = asyncio.run(_create_database(admin))
        site = Orthanc(root)
        rules = root / "routing.yaml"
        rules.write_text(ROUTING.format(transport=args.transport, http=site.http, dicom=site.dicom))
        try:
            print(
                f"receive throughput: {args.instances} CT instances x {args.rounds} rounds, storescu -> ..."
            )
            recv = throughput(args, root, dsn, rules)
            print(f"end-to-end: {args.study}-instance study -> reading site ({args.transport})")
            e2e = latency(args, root, dsn, rules, site)
        finally:
            site.stop()
        result = {
            "machine": {"cpus": os.cpu_count()},
            "receive": recv,
            "end_to_end": e2e,
            "targets": {"receive_ratio": 0.5, "end_to_end_seconds": 10},
        }
        print()
        print(f"storescp           {recv['storescp median inst/s']:>7} inst/s (median of {args.rounds})")
        print(f"phix gateway       {recv['gateway median inst/s']:>7} inst/s")
        print(f"ratio              {recv['ratio']:>7}   (target >= 0.5)")
        if args.compare_tuning:
            print(f"untuned pynetdicom {recv['gateway, pynetdicom defaults / storescp']:>7}   (ratio)")
        print(f"end-to-end         {e2e['seconds']:>7} s  for {args.study} instances (target <= 10 s) {e2e}")
        out = REPO / "bench" / "out"
        out.mkdir(exist_ok=True)
        (out / "dicom.json").write_text(json.dumps(result, indent=2))
    except Exception:
        for log in sorted(root.glob("gateway-*.log")):
            print(f"--- {log.name} (tail)", file=sys.stderr)
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
