"""Search benchmark (issue 3): the platform as deployed, over HTTP, at 100k and 1M resources.

    .venv/bin/python bench/search.py                                   # 100k then 1M resources
    .venv/bin/python bench/search.py --sizes 100000 --profile docs/perf/x   # one size, profiled
    .venv/bin/python bench/search.py --sizes 100000 --disable mpi --no-queries   # ingest, no MPI

1. ``phix synth --no-dicom --no-ndjson`` writes one population big enough for the largest size
   (about 22 resources per resident); its institution bundles are split into stages, interleaved
   across institutions, each stage ending when the loaded entries reach the next size.
2. ``phix serve`` (``--workers`` = cores, a fresh embedded PostgreSQL in a temp dir, all domains on
   unless ``--disable``) runs as a subprocess on a free port.
3. Each stage's transaction bundles go through ``POST /fhir`` from ``--load-clients`` concurrent
   clients (``phix.synth.load.post_bundle``, the ``phix load`` client): ingest resources/s = entries
   accepted (2xx) / wall time. Then the patient index queue is drained, the database vacuumed and
   analysed (``--no-vacuum`` to skip), and the query mix runs.
4. After the first stage, one extra resident with 1,000 resources (a Patient and 999 Encounters,
   Observations and Conditions, one transaction) is loaded for the ``$everything`` target.
5. The query mix (``httpload``: keep-alive, pre-built requests), parameters drawn from the loaded
   data: Patient by identifier, by name prefix (surname), by birthdate range (a month); Observation
   by subject + LOINC code + date range; Encounter by day with ``_include=Encounter:subject``;
   Patient by identifier with ``_revinclude=Observation:subject``; ``Patient/<id>/$everything``;
   plus Observation by subject and by code alone. Every parameter set is sent once (check and
   warm-up); then every template alone at 1 client (``--serial`` requests) and at ``--clients``
   (``--requests``), each run capped at ``--seconds``; then all templates interleaved at
   ``--clients`` (capped at ``--mix-seconds``), each answer attributed to its template by its self
   link. Every response must be 200 with the expected entries, or the run is reported invalid.
6. ``$everything`` of the 1,000-resource resident, all pages (``_count=1000``), one client.

Also printed per phase: cores used by the phix workers, PostgreSQL, this client and the rest of
the machine (other jobs), the load average, and the CPU (phix + PostgreSQL) per resource or per
request, which does not depend on what else runs on the machine. ``--profile DIR``, after each
stage's measured phases: a second mixed run and a further ingest batch (``--profile-entries``,
taken from the next stage) under py-spy (all workers) and PostgreSQL's statement log; and
``EXPLAIN (ANALYZE, BUFFERS)`` of every template (one parameter set), slowest in the mix first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from httpload import Result, _read_response, request_bytes, run
from phixserver import CpuMeter, Server, http_get

ROOT = Path(__file__).resolve().parents[1]
RESOURCES_PER_RESIDENT = 22.0  # phix synth, measured: 22,435 resources for 1,000 residents
LOINC = "http://loinc.org"
HEAVY_MRN_SYSTEM = "https://fhir.putian.gov.cn/NamingSystem/bench/mrn"
HEAVY_MRN = "HEAVY-0001"


# -- data: synth output, stages, what the queries draw from ---------------------------------------


@dataclass
class PatientRecord:
    stage: int
    mrn: str  # "system|value"
    full_url: str
    family: str | None
    birth_date: str | None
    observations: list[tuple[str, str]] = field(default_factory=list)  # (LOINC code, effective)


@dataclass
class Plan:
    stages: list[list[str]]  # bundle names (relative to the synth dir), shared.json first
    spare: list[str]  # bundles after the last stage (profiled ingest batches come from here)
    entries: dict[str, int]
    patients: list[PatientRecord]
    encounter_days: list[tuple[int, str]]  # (stage, YYYY-MM-DD)
    obs_codes: list[tuple[int, str]]  # (stage, LOINC code)


def synth(out: Path, residents: int, seed: int) -> None:
    cmd = [
        sys.executable,
        "-m",
        "phix.cli",
        "synth",
        "--seed",
        str(seed),
        "--residents",
        str(residents),
        "--out",
        str(out),
        "--no-dicom",
        "--no-ndjson",
        "--no-progress",
    ]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"synth: {residents:,} residents in {time.perf_counter() - started:.0f} s -> {out}", flush=True)


def plan_stages(root: Path, sizes: list[int]) -> Plan:
    """Split the bundles into stages (interleaved across institutions) and collect query values."""
    from phix.synth.bundles import SHARED_BUNDLE

    base = root / "bundles"
    by_org: dict[str, list[str]] = defaultdict(list)
    for path in sorted(base.glob("*/*.json")):
        by_org[path.parent.name].append(path.relative_to(root).as_posix())
    order: list[str] = []
    for i in range(max(len(v) for v in by_org.values())):
        order += [names[i] for _, names in sorted(by_org.items()) if i < len(names)]
    shared = (base / SHARED_BUNDLE).relative_to(root).as_posix()
    rng = random.Random(1)
    plan = Plan([[shared]], [], {}, [], [], [])
    plan.entries[shared] = len(orjson.loads((root / shared).read_bytes())["entry"])
    loaded = plan.entries[shared]
    stage = 0
    for name in order:
        bundle = orjson.loads((root / name).read_bytes())
        entries = bundle["entry"]
        plan.entries[name] = len(entries)
        if stage == len(sizes):
            plan.spare.append(name)
            continue
        plan.stages[stage].append(name)
        loaded += len(entries)
        _collect(plan, stage, entries, rng)
        if loaded >= sizes[stage]:
            stage += 1
            if stage < len(sizes):
                plan.stages.append([])
    if stage < len(sizes):
        raise SystemExit(f"the synth output holds {loaded:,} entries, fewer than {sizes[-1]:,}")
    return plan


def _collect(plan: Plan, stage: int, entries: list[dict[str, Any]], rng: random.Random) -> None:
    patients: dict[str, PatientRecord] = {}
    for e in entries:
        r = e["resource"]
        t = r["resourceType"]
        if t == "Patient":
            mrn = e["request"]["url"].split("identifier=", 1)[1]
            names = r.get("name") or [{}]
            rec = PatientRecord(stage, mrn, e["fullUrl"], names[0].get("family"), r.get("birthDate"))
            patients[e["fullUrl"]] = rec
            plan.patients.append(rec)
        elif t == "Observation":
            subject = r.get("subject", {}).get("reference")
            codes = [c["code"] for c in r.get("code", {}).get("coding", []) if c.get("system") == LOINC]
            when = r.get("effectiveDateTime")
            if subject in patients and codes and when:
                patients[subject].observations.append((codes[0], when))
                if rng.random() < 0.02:
                    plan.obs_codes.append((stage, codes[0]))
        elif t == "Encounter":
            start = r.get("period", {}).get("start")
            end = r.get("period", {}).get("end")
            if start and end and start[:10] == end[:10] and rng.random() < 0.05:  # date=day: within it
                plan.encounter_days.append((stage, start[:10]))


def heavy_resident_bundle(resources: int = 1000) -> bytes:
    """One resident with ``resources`` resources: a Patient, Encounters, Observations, Conditions."""
    rng = random.Random(1000)
    patient_url = "urn:uuid:00000000-0000-4000-8000-00000000b001"
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": HEAVY_MRN_SYSTEM, "value": HEAVY_MRN}],
        "name": [{"use": "official", "text": "郑千条", "family": "郑", "given": ["千条"]}],
        "gender": "female",
        "birthDate": "1950-02-03",
    }
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_url,
            "resource": patient,
            "request": {"method": "PUT", "url": f"Patient?identifier={HEAVY_MRN_SYSTEM}|{HEAVY_MRN}"},
        }
    ]
    n_enc = (resources - 1) // 10
    n_cond = (resources - 1) // 10
    n_obs = resources - 1 - n_enc - n_cond
    vitals = [
        ("8867-4", "Heart rate", "/min", 60, 110),
        ("8310-5", "Body temperature", "Cel", 36, 39),
        ("29463-7", "Body weight", "kg", 40, 70),
        ("2339-0", "Glucose", "mmol/L", 4, 12),
        ("2093-3", "Cholesterol", "mmol/L", 3, 7),
    ]
    days = sorted(dt.date(2016, 1, 1) + dt.timedelta(days=rng.randrange(3800)) for _ in range(n_enc))
    for i, day in enumerate(days):
        entries.append(
            _put(
                "Encounter",
                f"bench-heavy-enc-{i}",
                {
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": {"reference": patient_url},
                    "period": {"start": f"{day}T09:00:00+08:00", "end": f"{day}T09:30:00+08:00"},
                },
            )
        )
    for i in range(n_obs):
        code, display, unit, low, high = vitals[i % len(vitals)]
        enc = i % n_enc
        entries.append(
            _put(
                "Observation",
                f"bench-heavy-obs-{i}",
                {
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                    "subject": {"reference": patient_url},
                    "encounter": {"reference": f"Encounter/bench-heavy-enc-{enc}"},
                    "effectiveDateTime": f"{days[enc]}T09:10:00+08:00",
                    "valueQuantity": {
                        "value": round(rng.uniform(low, high), 1),
                        "unit": unit,
                        "system": "http://unitsofmeasure.org",
                        "code": unit,
                    },
                },
            )
        )
    for i in range(n_cond):
        entries.append(
            _put(
                "Condition",
                f"bench-heavy-cond-{i}",
                {
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
                    "subject": {"reference": patient_url},
                    "encounter": {"reference": f"Encounter/bench-heavy-enc-{i % n_enc}"},
                    "onsetDateTime": f"{days[i % n_enc]}T09:00:00+08:00",
                },
            )
        )
    assert len(entries) == resources
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def _put(res_type: str, res_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{res_id}",
        "resource": {"resourceType": res_type, "id": res_id, **body},
        "request": {"method": "PUT", "url": f"{res_type}/{res_id}"},
    }


# -- the server and the machine ---------------------------------------------------------------------


class Profiler:
    """py-spy over every worker of the server (``--subprocesses``), collapsed stacks."""

    def __init__(self, out_dir: Path | None, server: Server) -> None:
        self.out_dir = out_dir
        self.server = server
        self.process: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None

    def start(self, name: str) -> None:
        if self.out_dir is None:
            return
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.path = self.out_dir / f"{name}.txt"
        self.process = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(self.server.process.pid),
                "--subprocesses",
                "--nonblocking",
                "--rate",
                "50",
                "--format",
                "raw",
                "-o",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.process = None
        if self.path is not None and self.path.exists():
            print(summarise_profile(self.path), flush=True)


class StatementLog:
    """PostgreSQL's own view: every statement's duration (``log_min_duration_statement = 0``) for a
    window, parsed from the embedded server's log and summed per statement and per kind."""

    SETTINGS = ("log_min_duration_statement", "log_parameter_max_length", "log_parameter_max_length_on_error")

    def __init__(self, out_dir: Path | None, server: Server) -> None:
        self.out_dir = out_dir
        self.server = server
        self.name: str | None = None
        self.offset = 0

    @property
    def log(self) -> Path:
        return self.server.data_dir / "pg" / "log"

    def _set(self, on: bool) -> None:
        async def apply() -> None:
            import asyncpg

            conn = await asyncpg.connect(self.server.dsn)
            try:
                for key in self.SETTINGS:
                    await conn.execute(f"ALTER SYSTEM SET {key} = 0" if on else f"ALTER SYSTEM RESET {key}")
                await conn.execute("SELECT pg_reload_conf()")
            finally:
                await conn.close()

        asyncio.run(apply())
        time.sleep(0.5)  # the postmaster signals every backend; give them a moment

    def start(self, name: str) -> None:
        if self.out_dir is None:
            return
        self.name = name
        self.offset = self.log.stat().st_size
        self._set(True)

    def stop(self, units: int, unit: str) -> None:
        if self.name is None:
            return
        self._set(False)
        with self.log.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        assert self.out_dir is not None
        summary = summarise_statements(text, units, unit)
        (self.out_dir / f"{self.name}-sql.txt").write_text(summary + "\n")
        print(f"PostgreSQL statements ({self.name}):\n{summary}", flush=True)
        self.name = None


_DURATION = re.compile(r"duration: ([0-9.]+) ms\s+(?:(parse|bind|execute) [^:]*|statement): (.*)", re.S)
STATEMENT_KINDS = [  # matched on the statement with its white space collapsed
    ("search index rows", r"^WITH [di]_search_"),
    ("patient index (mpi_*)", r"\bmpi_"),
    ("advisory locks", r"pg_advisory"),
    ("resource + version writes", r"^WITH cur AS \( (INSERT|UPDATE) "),
    ("resource lookups by id", r"^SELECT .*FROM resources WHERE res_type = \$1 AND res_id = \$2"),
    ("transaction control", r"^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET )"),
    ("$everything compartment", r"search_reference s WHERE s\.ph = ANY"),
    ("search / other SELECT", r"^SELECT"),
]


def _by_time(item: tuple[str, list[float]]) -> float:
    return -item[1][1]


def summarise_statements(text: str, units: int, unit: str, top: int = 15) -> str:
    per: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    kinds: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    entries: list[str] = []
    for line in text.splitlines():
        if line[:1].isdigit() and (" LOG:  " in line or " ERROR:  " in line):
            entries.append(line)
        elif line.startswith("\t") and entries:
            entries[-1] += " " + line.strip()
    executes = 0
    for entry in entries:
        m = _DURATION.search(entry)
        if not m:
            continue
        ms, phase, sql = float(m[1]), m[2], " ".join(m[3].split())
        if "ALTER SYSTEM" in sql or "pg_reload_conf" in sql:  # ours (switching the log on and off)
            continue
        executes += phase in (None, "execute")
        kind = next((k for k, rx in STATEMENT_KINDS if re.search(rx, sql, re.I)), "other")
        key = sql[:150]
        for bucket in (per[key], kinds[kind]):
            bucket[0] += phase in (None, "execute")
            bucket[1] += ms
    total = sum(v[1] for v in kinds.values()) or 1.0
    lines = [
        f"  {executes:,} statements, {total / 1000:.1f} s of statement time (parse+bind+execute),"
        f" {executes / max(units, 1):.1f} statements and {total / max(units, 1):.2f} ms per {unit}",
        "  by kind (share of statement time, statements):",
        *(f"  {v[1] / total:6.1%} {int(v[0]):>8,}  {k}" for k, v in sorted(kinds.items(), key=_by_time)),
        f"  top {top} statements by time (calls, mean ms, share):",
    ]
    for key, (n, ms) in sorted(per.items(), key=_by_time)[:top]:
        lines.append(f"  {int(n):>8,} {ms / max(n, 1):7.3f} {ms / total:6.1%}  {key}")
    return "\n".join(lines)


# Buckets for the profile summary: the first rule (in order) whose marker appears in a stack wins.
PROFILE_BUCKETS = [
    ("validation (fhir.resources / pydantic)", ("phix/fhir/validation.py",)),
    ("patient index (mpi listener, linking)", ("phix/mpi/",)),
    ("search index: extraction + index SQL", ("phix/search/indexer.py", "phix/search/extract.py")),
    ("referential integrity", ("phix/fhir/integrity.py", "phix/fhir/references.py")),
    ("conditional (resolve, advisory lock)", ("phix/fhir/conditional.py",)),
    ("$everything", ("phix/fhir/operations/everything.py",)),
    ("search: _include/_revinclude", ("phix/search/include.py",)),
    ("search: parse/compile", ("phix/search/compiler.py", "phix/search/parse.py")),
    ("search: page SQL + bundle", ("phix/search/",)),
    ("repository (resource/version SQL)", ("phix/storage/repository.py",)),
    ("transaction bookkeeping", ("phix/fhir/transaction.py", "phix/fhir/bundle_entries.py")),
    ("request body parse / response JSON", ("phix/fhir/http.py", "phix/fhir/bundle.py")),
    ("HTTP stack (uvicorn/starlette/fastapi, middleware)", ("uvicorn/", "starlette/", "fastapi/", "phix/")),
]
IDLE_LEAF = "Runner.run (asyncio/runners.py"  # nothing above the loop: uvloop (C) waiting or doing I/O
PACKAGES = [
    ("asyncpg", "asyncpg/"),
    ("pydantic", "pydantic"),
    ("fhir.resources", "fhir/resources/"),
    ("fhir_core", "fhir_core/"),
    ("orjson/json", "json"),
    ("uvicorn", "uvicorn/"),
    ("starlette", "starlette/"),
    ("fastapi", "fastapi/"),
    ("phix.search", "phix/search/"),
    ("phix.mpi", "phix/mpi/"),
    ("phix.fhir", "phix/fhir/"),
    ("phix.storage", "phix/storage/"),
    ("phix (other)", "phix/"),
    ("asyncio", "asyncio/"),
]


def summarise_profile(path: Path, top: int = 20) -> str:
    """py-spy collapsed stacks -> share of in-request samples per component (first matching bucket,
    inclusive), per package of the leaf frame (self time), and the top leaf functions.

    Samples are wall-clock while a worker has a Python stack: on a saturated machine they include
    time runnable but waiting for a core, so read shares, not seconds. Samples with nothing above the
    event loop (uvloop in C: waiting for sockets, reading, writing) are counted apart."""
    buckets: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = idle = threads = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        loop = max((i for i, f in enumerate(frames) if f.startswith(IDLE_LEAF)), default=-1)
        if loop < 0:  # another thread (uvicorn's supervisor ping pipe ...)
            threads += n
            continue
        frames = frames[loop + 1 :]
        if not frames:
            idle += n
            continue
        total += n
        for bucket, markers in PROFILE_BUCKETS:
            if any(m in frame for frame in frames for m in markers):
                buckets[bucket] += n
                break
        else:
            buckets["other"] += n
        leaf = frames[-1]
        where = leaf[leaf.find("(") :]
        packages[next((name for name, m in PACKAGES if m in where), "other")] += n
        leaves[leaf] += n
    if not total:
        return f"profile {path.name}: no samples"
    lines = [
        f"profile {path.name}: {total:,} samples in requests (all workers, 50 Hz), "
        f"{idle:,} more with only the event loop on the stack ({idle / (idle + total):.0%}), "
        f"{threads:,} in other threads (not counted)",
        "  by component (inclusive, first match):",
        *(f"  {n / total:6.1%}  {b}" for b, n in buckets.most_common()),
        "  by package of the leaf frame (self time):",
        *(f"  {n / total:6.1%}  {b}" for b, n in packages.most_common()),
        "  top leaf functions (self time):",
        *(f"  {n / total:6.1%}  {name}" for name, n in leaves.most_common(top)),
    ]
    text = "\n".join(lines)
    path.with_suffix(".summary.txt").write_text(text + "\n")
    return text


# -- ingest -------------------------------------------------------------------------------------------


@dataclass
class Ingest:
    entries: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return sum(self.accepted.values()) / self.seconds if self.seconds else 0.0


def load_stage(root: Path, names: list[str], url: str, clients: int, total_before: int) -> Ingest:
    import httpx

    from phix.synth.load import post_bundle

    out = Ingest()
    lock = threading.Lock()
    started = time.perf_counter()
    last_print = started

    def done(future: Future[Any]) -> None:
        nonlocal last_print
        result = future.result()
        with lock:
            out.entries += result.entries
            if result.ok:
                out.accepted.update({k: v for k, v in result.statuses.items() if k.startswith("2")})
            else:
                out.failed.append(f"{result.name}: HTTP {result.http_status}: {result.error}")
            now = time.perf_counter()
            if now - last_print > 30:
                last_print = now
                n = sum(out.accepted.values())
                print(
                    f"  {total_before + n:>10,} resources  stage {n / (now - started):,.0f}/s  "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )

    with httpx.Client(timeout=600) as client:
        queue = list(names)
        if queue and queue[0].endswith("shared.json"):  # everything refers to it: first, alone
            f: Future[Any] = Future()
            f.set_result(post_bundle(client, url, root, queue.pop(0), retries=0))
            done(f)
        with ThreadPoolExecutor(clients) as pool:
            pending: set[Future[Any]] = set()
            for name in queue:
                pending.add(pool.submit(post_bundle, client, url, root, name, 0))
                if len(pending) >= clients:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        done(fut)
            for fut in pending:
                fut.result()
                done(fut)
    out.seconds = time.perf_counter() - started
    return out


async def db_fetch(dsn: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def wait_mpi_queue(server: Server, timeout: float = 3600) -> tuple[int, float]:
    """Wait until the patient index has linked every queued record: (queued at start, seconds)."""
    started = time.perf_counter()
    first = None
    while time.perf_counter() - started < timeout:
        try:
            rows = asyncio.run(db_fetch(server.dsn, "SELECT count(*) AS n FROM mpi_pending"))
        except Exception:  # table absent: mpi disabled
            return 0, 0.0
        n = int(rows[0]["n"])
        first = n if first is None else first
        if n == 0:
            break
        time.sleep(1)
    return first or 0, time.perf_counter() - started


def db_summary(server: Server) -> str:
    rows = asyncio.run(
        db_fetch(
            server.dsn,
            "SELECT (SELECT count(*) FROM resources WHERE NOT deleted) AS resources,"
            " (SELECT count(*) FROM resources WHERE res_type = 'Patient' AND NOT deleted) AS patients,"
            " pg_size_pretty(pg_database_size(current_database())) AS size",
        )
    )
    r = rows[0]
    return (
        f"database: {r['resources']:,} resources ({r['patients']:,} Patients, golden included), {r['size']}"
    )


# -- queries ------------------------------------------------------------------------------------------


@dataclass
class Template:
    label: str
    kind: str  # single-parameter searches are "single" (the 50 ms p99 target)
    paths: list[str]
    check: Callable[[dict[str, Any]], str | None]


def _counts(bundle: dict[str, Any]) -> tuple[int, int]:
    modes = Counter(e.get("search", {}).get("mode") for e in bundle.get("entry", []))
    return modes["match"], modes["include"]


def expect(matches: tuple[int, int | None], includes: int = 0) -> Callable[[dict[str, Any]], str | None]:
    low, high = matches

    def check(bundle: dict[str, Any]) -> str | None:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "searchset":
            return "not a searchset Bundle"
        m, i = _counts(bundle)
        if m < low or (high is not None and m > high):
            return f"{m} matches, expected {low}..{high if high is not None else 'n'}"
        if i < includes:
            return f"{i} included, expected at least {includes}"
        return None

    return check


def signature(body: bytes) -> tuple[str, frozenset[str]] | None:
    """(path, parameter names) of a searchset's self link: which template answered."""
    try:
        bundle = orjson.loads(body)
        url = next(link["url"] for link in bundle.get("link", []) if link["relation"] == "self")
    except (orjson.JSONDecodeError, StopIteration, KeyError, TypeError):
        return None
    parts = urlsplit(url)
    path = parts.path.split("/fhir/", 1)[-1]
    if path.endswith("$everything"):
        path = "Patient/*/$everything"
    return path, frozenset(k for k, _ in parse_qsl(parts.query, keep_blank_values=True))


def resolve_patients(base: str, records: list[PatientRecord]) -> dict[str, str]:
    """MRN -> server Patient id (conditional updates: the server chose the ids)."""
    out = {}
    for rec in records:
        status, body = http_get(f"{base}/Patient?{urlencode({'identifier': rec.mrn})}")
        if status != 200:
            raise RuntimeError(f"resolving {rec.mrn}: HTTP {status}")
        entries = orjson.loads(body).get("entry", [])
        if len(entries) != 1:
            raise RuntimeError(f"resolving {rec.mrn}: {len(entries)} matches")
        out[rec.mrn] = entries[0]["resource"]["id"]
    return out


def templates(plan: Plan, stage: int, base: str, instances: int, seed: int) -> list[Template]:
    rng = random.Random(seed)
    loaded = [p for p in plan.patients if p.stage <= stage]
    with_obs = [p for p in loaded if p.observations]
    sample = rng.sample(with_obs, min(instances, len(with_obs)))
    ids = resolve_patients(base, sample)
    days = [d for s, d in plan.encounter_days if s <= stage]
    codes = [c for s, c in plan.obs_codes if s <= stage]
    surnames = [p.family for p in loaded if p.family]
    births = [p.birth_date for p in loaded if p.birth_date]

    def q(path: str, params: list[tuple[str, str]]) -> str:
        return f"/fhir/{path}?{urlencode(params)}" if params else f"/fhir/{path}"

    def n(make: Callable[[int], str]) -> list[str]:
        return [make(i) for i in range(instances)]

    def month_range(_: int) -> str:
        day = dt.date.fromisoformat(rng.choice(births)[:10])
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        return q("Patient", [("birthdate", f"ge{start}"), ("birthdate", f"lt{end}")])

    def obs_query(_: int) -> str:
        p = rng.choice(sample)
        code, when = rng.choice(p.observations)
        year = int(when[:4])
        return q(
            "Observation",
            [
                ("subject", f"Patient/{ids[p.mrn]}"),
                ("code", f"{LOINC}|{code}"),
                ("date", f"ge{year - 1}{when[4:10]}"),
                ("date", f"le{year + 1}{when[4:10]}"),
            ],
        )

    return [
        Template(
            "Patient?identifier",
            "single",
            n(lambda _: q("Patient", [("identifier", rng.choice(loaded).mrn)])),
            expect((1, 1)),
        ),
        Template(
            "Patient?name=<surname>",
            "single",
            n(lambda _: q("Patient", [("name", rng.choice(surnames))])),
            expect((1, None)),
        ),
        Template("Patient?birthdate=<month>", "single", n(month_range), expect((1, None))),
        Template(
            "Observation?subject",
            "single",
            n(lambda _: q("Observation", [("subject", f"Patient/{ids[rng.choice(sample).mrn]}")])),
            expect((1, None)),
        ),
        Template(
            "Observation?code",
            "single",
            n(lambda _: q("Observation", [("code", f"{LOINC}|{rng.choice(codes)}")])),
            expect((1, None)),
        ),
        Template("Obs?subject&code&date", "multi", n(obs_query), expect((1, None))),
        Template(
            "Encounter?date&_include",
            "include",
            n(lambda _: q("Encounter", [("date", rng.choice(days)), ("_include", "Encounter:subject")])),
            expect((1, None), includes=1),
        ),
        Template(
            "Patient?identifier&_revinclude",
            "include",
            n(
                lambda _: q(
                    "Patient",
                    [("identifier", rng.choice(sample).mrn), ("_revinclude", "Observation:subject")],
                )
            ),
            expect((1, 1), includes=1),
        ),
        Template(
            "Patient/$everything",
            "everything",
            n(lambda _: q(f"Patient/{ids[rng.choice(sample).mrn]}/$everything", [])),
            expect((2, None)),
        ),
    ]


@dataclass
class Figures:
    n: int = 0
    rate: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    cpu_ms: float = float("nan")  # CPU of the phix workers + PostgreSQL per request (alone, K clients)
    pg_ms: float = float("nan")  # of which PostgreSQL

    @classmethod
    def of(cls, result: Result) -> Figures:
        return cls(len(result.latencies), result.rate, result.pct(0.50), result.pct(0.99))


def verify(template: Template, result: Result) -> list[str]:
    errors = [f"{template.label}: HTTP {s} x{n}" for s, n in result.statuses.items() if s != 200]
    for body in result.bodies:
        problem = template.check(orjson.loads(body))
        if problem:
            errors.append(f"{template.label}: {problem}")
    return errors


class QueryMix:
    """The query templates over HTTP: checked once, each alone, all interleaved."""

    def __init__(
        self, port: int, tpls: list[Template], clients: int, meter: CpuMeter, seconds: float
    ) -> None:
        self.port = port
        self.seconds = seconds  # at most this long per run (slow templates get fewer requests)
        self.meter = meter
        self.tpls = tpls
        self.clients = clients
        host = f"127.0.0.1:{port}"
        self.built = {t.label: [request_bytes("GET", p, host) for p in t.paths] for t in tpls}
        self.by_signature: dict[tuple[str, frozenset[str]] | None, Template] = {}
        self.errors: list[str] = []

    async def _run(
        self, name: str, make: Callable[[int], bytes], total: int, k: int, seconds: float | None = None
    ) -> Result:
        return await run(
            name,
            "127.0.0.1",
            self.port,
            make,
            total=total,
            duration=seconds or self.seconds,
            concurrency=k,
            keep_bodies=True,
        )

    async def check(self) -> None:
        """Every instance once, one client (also the warm-up); learns each template's self link."""
        for t in self.tpls:
            reqs = self.built[t.label]
            result = await self._run(t.label, lambda i, r=reqs: r[i], len(reqs), 1)
            self.errors += verify(t, result)
            self.by_signature[signature(result.bodies[0])] = t
        if None in self.by_signature or len(self.by_signature) != len(self.tpls):
            raise RuntimeError("the templates' answers cannot be told apart by their self links")

    async def alone(self, requests: int, serial: int) -> dict[str, dict[str, Figures]]:
        out: dict[str, dict[str, Figures]] = {}
        for t in self.tpls:
            reqs = self.built[t.label]
            out[t.label] = {}
            for key, k, total in (("alone1", 1, serial), ("aloneK", self.clients, requests)):
                before = self.meter.sample()
                result = await self._run(t.label, lambda i, r=reqs: r[i % len(r)], total, k)
                cpu = CpuMeter.delta(before, self.meter.sample())
                self.errors += verify(t, result)
                figures = out[t.label][key] = Figures.of(result)
                n = max(len(result.latencies), 1)
                figures.cpu_ms = (cpu["phix"] + cpu["postgres"]) * 1000 / n
                figures.pg_ms = cpu["postgres"] * 1000 / n
        return out

    async def mixed(self, total: int, seconds: float) -> dict[str, Figures]:
        """All templates interleaved (round robin) from ``clients`` connections; each answer is
        attributed to its template by its self link."""
        order = [self.built[t.label] for t in self.tpls]

        def make(i: int) -> bytes:
            reqs = order[i % len(order)]
            return reqs[(i // len(order)) % len(reqs)]

        result = await self._run("mix", make, total, self.clients, seconds)
        split: dict[str, Result] = {t.label: Result(t.label) for t in self.tpls}
        if result.statuses.get(200, 0) != len(result.latencies):
            self.errors.append(f"mix: statuses {result.statuses}")
        for latency, body in zip(result.latencies, result.bodies, strict=True):
            tpl = self.by_signature.get(signature(body))
            if tpl is None:
                self.errors.append("mix: an answer matches no template")
                continue
            problem = tpl.check(orjson.loads(body))
            if problem:
                self.errors.append(f"mix {tpl.label}: {problem}")
            split[tpl.label].latencies.append(latency)
        out = {}
        for label, r in split.items():
            r.elapsed = result.elapsed
            out[label] = Figures.of(r)
        out["(whole mix)"] = Figures.of(result)
        return out


async def everything_all_pages(port: int, patient_id: str, runs: int) -> tuple[list[float], int, int]:
    """The whole ``$everything`` (following next links, ``_count=1000``) from one client: ms per run."""
    host = f"127.0.0.1:{port}"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times: list[float] = []
    pages = entries = 0
    try:
        for _ in range(runs):
            path: str | None = f"/fhir/Patient/{patient_id}/$everything?_count=1000"
            started = time.perf_counter()
            pages = entries = 0
            while path:
                writer.write(request_bytes("GET", path, host))
                status, body = await _read_response(reader)
                if status != 200:
                    raise RuntimeError(f"$everything: HTTP {status}: {body[:300]!r}")
                bundle = orjson.loads(body)
                pages += 1
                entries += len(bundle.get("entry", []))
                nxt = [lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"]
                path = urlsplit(nxt[0])._replace(scheme="", netloc="").geturl() if nxt else None
            times.append((time.perf_counter() - started) * 1000)
    finally:
        writer.close()
    return times, pages, entries


# -- EXPLAIN of the slowest template ---------------------------------------------------------------


class ExplainingConnection:
    """An asyncpg connection that runs EXPLAIN (ANALYZE, BUFFERS) before each SELECT it is given."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.plans: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def _explain(self, sql: str, args: tuple[Any, ...]) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            rows = await self._conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
            self.plans.append(sql + "\n\n" + "\n".join(r[0] for r in rows))

    async def fetch(self, sql: str, *args: Any, **kw: Any) -> Any:
        await self._explain(sql, args)
        return await self._conn.fetch(sql, *args, **kw)

    async def fetchrow(self, sql: str, *args: Any, **kw: Any) -> Any:
        await self._explain(sql, args)
        return await self._conn.fetchrow(sql, *args, **kw)

    async def fetchval(self, sql: str, *args: Any, **kw: Any) -> Any:
        await self._explain(sql, args)
        return await self._conn.fetchval(sql, *args, **kw)


async def explain(dsn: str, path: str) -> str:
    """Run one request's SQL in-process (the search service or $everything) under EXPLAIN."""
    import asyncpg

    from phix.search.registry import load_registry

    registry = load_registry(ROOT / "profiles")
    parts = urlsplit(path)
    params = parse_qsl(parts.query, keep_blank_values=True)
    route = parts.path.removeprefix("/fhir/")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET TIME ZONE 'UTC'")
        xconn = ExplainingConnection(conn)
        if route.endswith("$everything"):
            from phix.fhir.operations.everything import everything
            from phix.mpi.links import resident_patients

            pid = route.split("/")[1]
            ids = await resident_patients(conn, pid)
            ids = [pid, *[i for i in ids if i != pid]]
            await everything(xconn, registry, ids, dict(params), 100)
        else:
            from phix.search.service import search

            await search(
                xconn, registry, route, params, base_url="http://bench/fhir", default_count=20, max_count=1000
            )
        return f"-- {path}\n\n" + "\n\n-- next statement\n\n".join(xconn.plans)
    finally:
        await conn.close()


# -- main ---------------------------------------------------------------------------------------------


def print_table(size_label: str, figures: dict[str, dict[str, Figures]], clients: int) -> None:
    print(f"\nqueries at {size_label} (first page of 20; $everything first page of 100), ms:")
    print(
        f"{'template':<32} {'1 client p50/p99':>18} {f'{clients} clients p50/p99':>20} {'rate':>7}"
        f" {f'mix x{clients} p50/p99':>20} {'n':>5} {'CPU ms/req (pg)':>16}"
    )
    for label, f in figures.items():
        a1, ak, mx = f.get("alone1"), f.get("aloneK"), f.get("mix")

        def pp(x: Figures | None) -> str:
            return f"{x.p50:7.1f} / {x.p99:7.1f}" if x else ""

        rate = f"{ak.rate:7.0f}" if ak else f"{mx.rate:7.0f}" if mx else ""
        cpu = f"{ak.cpu_ms:6.1f} ({ak.pg_ms:4.1f})" if ak else ""
        n = mx.n if mx else 0
        print(f"{label:<32} {pp(a1):>18} {pp(ak):>20} {rate:>7} {pp(mx):>20} {n:>5} {cpu:>16}")


@contextlib.contextmanager
def temp_dir(keep: bool, parent: Path | None) -> Iterator[Path]:
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="phix-bench-search-", dir=parent))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


class Bench:
    """One run: the server, the stages, the report."""

    def __init__(self, args: argparse.Namespace, tmp: Path, root: Path, plan: Plan) -> None:
        self.args = args
        self.root = root
        self.plan = plan
        self.sizes: list[int] = args.sizes
        self.heavy_bundle = heavy_resident_bundle()
        self.server = Server(tmp / "data", args.workers, args.disable)
        self.pyspy = Profiler(args.profile, self.server)
        self.sql = StatementLog(args.profile, self.server)
        self.meter = CpuMeter(self.server)
        self.total = 0  # entries accepted so far
        self.heavy_id: str | None = None
        self.failures: list[str] = []
        self.stages: list[dict[str, Any]] = []

    def stop(self) -> None:
        self.pyspy.stop()
        self.server.stop()

    def run(self) -> None:
        print(
            f"server: {self.server.base}, workers {self.server.workers()}, "
            f"postmaster {self.server.postmaster_pid()}",
            flush=True,
        )
        for stage, names in enumerate(self.plan.stages):
            report: dict[str, Any] = {"size": self.sizes[stage]}
            self.stages.append(report)
            report["ingest"] = self.ingest(stage, names)
            if self.heavy_id is None:
                self.load_heavy_resident()
            self.settle()
            if not self.args.no_queries:
                report["queries"] = self.queries(stage)
            if self.args.profile:
                self.profiled_ingest(stage)

    def ingest(self, stage: int, names: list[str]) -> dict[str, Any]:
        size = self.sizes[stage]
        print(
            f"\n== stage {stage + 1}: ingest to {size:,} resources ({len(names)} bundles, "
            f"load average {os.getloadavg()[0]:.2f})",
            flush=True,
        )
        before = self.meter.sample()
        ingest = load_stage(self.root, names, self.server.base, self.args.load_clients, self.total)
        after = self.meter.sample()
        accepted = sum(ingest.accepted.values())
        self.total += accepted
        cpu = CpuMeter.delta(before, after)
        load = after["load"]
        print(
            f"ingest: {accepted:,} entries accepted {dict(ingest.accepted)} of {ingest.entries:,} in "
            f"{ingest.seconds:.0f} s = {ingest.rate:,.0f} resources/s (total {self.total:,}); "
            f"load average {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}",
            flush=True,
        )
        print(CpuMeter.render(cpu), flush=True)
        per = (cpu["phix"] + cpu["postgres"]) * 1000 / max(accepted, 1)
        cores = os.cpu_count() or 1
        print(
            f"CPU per resource: phix {cpu['phix'] * 1000 / max(accepted, 1):.2f} ms + PostgreSQL "
            f"{cpu['postgres'] * 1000 / max(accepted, 1):.2f} ms = {per:.2f} ms -> CPU-bound ceiling on "
            f"{cores} idle cores ~{cores * 1000 / per:,.0f} resources/s",
            flush=True,
        )
        if ingest.failed:
            self.failures += ingest.failed
            print("FAILED bundles:\n  " + "\n  ".join(ingest.failed[:20]), flush=True)
        queued, waited = wait_mpi_queue(self.server)
        print(f"patient index queue: {queued} pending at the end of the load, drained in {waited:.0f} s")
        return {
            "accepted": accepted,
            "total": self.total,
            "seconds": round(ingest.seconds, 1),
            "rate": round(ingest.rate),
            "cpu_ms_per_resource": round(per, 2),
            "ceiling": round(cores * 1000 / per),
            "cpu": {k: round(v, 1) for k, v in cpu.items()},
            "load_average": load,
            "mpi_queue": [queued, round(waited)],
            "failed": len(ingest.failed),
        }

    def load_heavy_resident(self) -> None:
        import httpx

        started = time.perf_counter()
        response = httpx.post(
            self.server.base,
            content=self.heavy_bundle,
            timeout=600,
            headers={"Content-Type": "application/fhir+json"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"heavy resident: HTTP {response.status_code} {response.text[:500]}")
        location = response.json()["entry"][0]["response"]["location"]
        self.heavy_id = location.split("/")[1]
        print(
            f"heavy resident Patient/{self.heavy_id}: 1,000 resources in one transaction, "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        wait_mpi_queue(self.server)

    def settle(self) -> None:
        print(db_summary(self.server), flush=True)
        if not self.args.no_vacuum:
            started = time.perf_counter()
            asyncio.run(db_fetch(self.server.dsn, "VACUUM ANALYZE"))
            print(f"vacuum analyze: {time.perf_counter() - started:.0f} s", flush=True)

    def queries(self, stage: int) -> dict[str, Any]:
        args, size = self.args, self.sizes[stage]
        print(f"query mix (load average {os.getloadavg()[0]:.2f}) ...", flush=True)
        tpls = templates(self.plan, stage, self.server.base, args.instances, args.seed + stage)
        mix = QueryMix(self.server.port, tpls, args.clients, self.meter, args.seconds)
        before = self.meter.sample()
        asyncio.run(mix.check())
        figures = asyncio.run(mix.alone(args.requests, args.serial))
        for label, f in asyncio.run(mix.mixed(args.requests * len(tpls) // 2, args.mix_seconds)).items():
            figures.setdefault(label, {})["mix"] = f
        after = self.meter.sample()
        cpu = CpuMeter.delta(before, after)
        load = after["load"]
        print_table(f"{size:,}", figures, args.clients)
        print(f"{CpuMeter.render(cpu)}; load average {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}", flush=True)
        assert self.heavy_id is not None
        times, pages, entries = asyncio.run(
            everything_all_pages(self.server.port, self.heavy_id, args.everything_runs)
        )
        times.sort()
        heavy = {
            "p50": times[len(times) // 2],
            "p99": times[min(len(times) - 1, int(0.99 * len(times)))],
            "max": times[-1],
            "pages": pages,
            "entries": entries,
        }
        print(
            f"$everything of the 1,000-resource resident (all {pages} pages of _count=1000, {entries} "
            f"entries, 1 client, {len(times)} runs): p50 {heavy['p50']:.0f} ms, p99 {heavy['p99']:.0f} ms, "
            f"max {heavy['max']:.0f} ms",
            flush=True,
        )
        if args.profile:  # a second mixed run under py-spy and the statement log (figures not kept)
            self.pyspy.start(f"queries-{size}")
            self.sql.start(f"queries-{size}")
            n = asyncio.run(mix.mixed(args.requests * len(tpls) // 2, args.mix_seconds))["(whole mix)"].n
            self.pyspy.stop()
            self.sql.stop(n, "request")
            ranked = sorted(tpls, key=lambda t: -figures[t.label]["mix"].p99)
            texts = [
                f"== {t.label} (mix p99 {figures[t.label]['mix'].p99:.0f} ms)\n"
                + asyncio.run(explain(self.server.dsn, t.paths[0]))
                for t in ranked
            ]
            out = args.profile / f"explain-{size}.txt"
            out.write_text("\n\n".join(texts) + "\n")
            print(
                f"EXPLAIN (ANALYZE, BUFFERS) of every template, slowest in the mix first "
                f"({ranked[0].label}) -> {out}",
                flush=True,
            )
        if mix.errors:
            self.failures += mix.errors
            print(f"FAILED checks ({len(mix.errors)}):\n  " + "\n  ".join(sorted(set(mix.errors))[:30]))
        return {
            "templates": {label: {k: vars(v) for k, v in f.items()} for label, f in figures.items()},
            "cpu": {k: round(v, 1) for k, v in cpu.items()},
            "load_average": load,
            "everything_heavy": heavy,
            "errors": len(mix.errors),
        }

    def profiled_ingest(self, stage: int) -> None:
        """Load a further batch (taken from the next stage, or the spare bundles) under py-spy and the
        statement log: where ingest time goes at this size, without touching the measured figures."""
        source = self.plan.stages[stage + 1] if stage + 1 < len(self.plan.stages) else self.plan.spare
        batch: list[str] = []
        while source and sum(self.plan.entries[n] for n in batch) < self.args.profile_entries:
            batch.append(source.pop(0))
        if not batch:
            return
        size = self.sizes[stage]
        print(
            f"\nprofiled ingest after {size:,}: {len(batch)} bundles, "
            f"{sum(self.plan.entries[n] for n in batch):,} entries",
            flush=True,
        )
        self.pyspy.start(f"ingest-{size}")
        self.sql.start(f"ingest-{size}")
        before = self.meter.sample()
        ingest = load_stage(self.root, batch, self.server.base, self.args.load_clients, self.total)
        after = self.meter.sample()
        self.pyspy.stop()
        accepted = sum(ingest.accepted.values())
        self.sql.stop(accepted, "resource")
        self.total += accepted
        print(
            f"profiled ingest: {ingest.rate:,.0f} resources/s under the profilers; "
            f"{CpuMeter.render(CpuMeter.delta(before, after))}",
            flush=True,
        )
        wait_mpi_queue(self.server)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000", help="resource counts to measure at")
    parser.add_argument("--clients", type=int, default=16, help="concurrent query clients (K)")
    parser.add_argument("--load-clients", type=int, default=4, help="concurrent bundle uploads")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--requests", type=int, default=1000, help="requests per template at K clients")
    parser.add_argument("--serial", type=int, default=200, help="requests per template at 1 client")
    parser.add_argument("--seconds", type=float, default=30, help="at most this long per template run")
    parser.add_argument("--mix-seconds", type=float, default=90, help="at most this long for the mix")
    parser.add_argument("--instances", type=int, default=300, help="distinct parameter sets per template")
    parser.add_argument("--everything-runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--synth-dir", type=Path, help="reuse this phix synth output (not deleted)")
    parser.add_argument("--disable", action="append", default=[], help="domain to disable (mpi ...)")
    parser.add_argument("--no-queries", action="store_true", help="ingest only")
    parser.add_argument("--no-vacuum", action="store_true", help="query right after the load")
    parser.add_argument("--profile", type=Path, help="profile into this dir (py-spy, statement log, EXPLAIN)")
    parser.add_argument("--profile-entries", type=int, default=20_000, help="size of each profiled ingest")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (data, server log)")
    parser.add_argument("--tmp", type=Path, help="make the temp dir (synth output, data) under this dir")
    args = parser.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind like Ctrl-C: stop the server, remove temp dirs
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    report: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}",
        "commit": commit.stdout.strip(),
        "dirty": subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split("\n")[:-1],
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    print(
        f"phix search benchmark {report['date']}, commit {report['commit']}: {report['machine']}, "
        f"{args.workers} workers, {args.load_clients} load clients, {args.clients} query clients, "
        f"disabled domains: {args.disable or 'none'}, load average {os.getloadavg()}",
        flush=True,
    )
    if report["dirty"]:  # the server runs the working tree, not the commit
        print(f"working tree differs from the commit under src/: {' '.join(report['dirty'])}", flush=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with temp_dir(args.keep, args.tmp) as tmp:
        root = args.synth_dir
        if root is None:
            root = tmp / "synth"
            spare = args.profile_entries * len(args.sizes) if args.profile else 0
            synth(root, int((args.sizes[-1] + spare) / RESOURCES_PER_RESIDENT * 1.02) + 50, args.seed)
        started = time.perf_counter()
        plan = plan_stages(root, args.sizes)
        stage_entries = [sum(plan.entries[n] for n in s) for s in plan.stages]
        print(
            f"plan: {len(plan.patients):,} patient records; stages of {stage_entries} entries, "
            f"{sum(plan.entries[n] for n in plan.spare):,} spare ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        bench = Bench(args, tmp, root, plan)
        try:
            bench.run()
        finally:
            bench.stop()
    report["stages"] = bench.stages
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(
        "\nour goals on 2 cores (issue 3 sets none): ingest >= 1,000 resources/s; indexed single-parameter"
        " searches p99 <= 50 ms at 1M with 16 clients; $everything of a 1,000-resource resident <= 300 ms"
    )
    if bench.failures:
        print(f"BENCHMARK INVALID: {len(bench.failures)} failed requests or checks")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
