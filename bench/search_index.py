"""Index-only search benchmark: index a scaled copy of ``synthetic_data/`` and time searches in-process.

    .venv/bin/python bench/search_index.py --resources 100000      # embedded PostgreSQL in a temp dir
    .venv/bin/python bench/search_index.py --resources 1000000 --dsn postgresql://...

It isolates the search index: no HTTP, no validation, no write listeners other than the index (no
referential integrity, no patient index). For the platform as deployed (HTTP ingest through
transaction bundles, all domains on, concurrent clients) use ``bench/search.py``.

The committed sample (~5,000 resources of 200 residents) is cloned ``k`` times with ids and
references suffixed ``-k`` (identifier values too, so identifier searches stay selective; names,
codes and dates repeat like in a real population). Resources are written straight into
``resources`` and indexed with :func:`phix.search.indexer.index_many` (extraction in worker
processes), then each query template runs ``--repeat`` times through ``phix.search.service.search``
on one connection, first page of 20. Prints ingest figures and p50/p95/p99 per template.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
_REF = re.compile(r'("reference":\s*")([A-Za-z]+)/([A-Za-z0-9\-.]+)(")')


def load_templates() -> list[dict[str, Any]]:
    """The sample's resources with ids assigned and ``urn:uuid:`` references made relative."""
    out: list[dict[str, Any]] = []
    for path in sorted(glob.glob(str(ROOT / "synthetic_data/bundles/**/*.json"), recursive=True)):
        bundle = orjson.loads(Path(path).read_bytes())
        entries = [e for e in bundle.get("entry", []) if "resource" in e]
        names: dict[str, str] = {}
        for e in entries:
            resource = e["resource"]
            resource.setdefault("id", e.get("fullUrl", "").rsplit(":", 1)[-1] or f"x{len(out)}")
            if e.get("fullUrl"):
                names[e["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"
        text = orjson.dumps([e["resource"] for e in entries]).decode()
        for urn, relative in names.items():
            text = text.replace(f'"{urn}"', f'"{relative}"')
        out.extend(orjson.loads(text))
    return out


def clone(template: dict[str, Any], k: int) -> bytes:
    """The template as copy ``k``: ids, local references and identifier values suffixed."""
    resource = dict(template)
    resource["id"] = f"{template['id']}-{k}"
    if "identifier" in resource:
        resource["identifier"] = [
            {**i, "value": f"{i['value']}-{k}"} if "value" in i else i for i in resource["identifier"]
        ]
    text = orjson.dumps(resource).decode()
    text = _REF.sub(lambda m: f"{m[1]}{m[2]}/{m[3]}-{k}{m[4]}", text)
    return text.encode()


_registry: Any = None


def _extract(batch: list[tuple[str, bytes]]) -> list[Any]:
    global _registry
    from phix.search.indexer import prepare_rows
    from phix.search.registry import load_registry

    if _registry is None:
        _registry = load_registry(ROOT / "profiles")
    return [prepare_rows(_registry, t, orjson.loads(body)) for t, body in batch]


async def ingest(dsn: str, templates: list[dict[str, Any]], total: int, batch: int, workers: int) -> None:
    from phix.search.indexer import write_rows

    conn = await asyncpg.connect(dsn)
    await conn.execute("SET TIME ZONE 'UTC'")
    copies = -(-total // len(templates))
    now = datetime.now(UTC)
    written = 0
    extract_time = write_time = 0.0
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers) as pool:
        pending: list[tuple[str, bytes]] = []

        async def flush(items: list[tuple[str, bytes]]) -> None:
            nonlocal written, extract_time, write_time
            t0 = time.perf_counter()
            chunks = [items[i : i + 100] for i in range(0, len(items), 100)]
            results = await asyncio.gather(*(loop.run_in_executor(pool, _extract, c) for c in chunks))
            rows = [r for chunk in results for r in chunk]
            t1 = time.perf_counter()
            async with conn.transaction():
                rids = await conn.fetch(
                    "INSERT INTO resources (res_type, res_id, version, last_updated, deleted, body)"
                    " SELECT t, i, 1, $3, false, b"
                    " FROM unnest($1::text[], $2::text[], $4::bytea[]) AS u(t, i, b) RETURNING rid",
                    [t for t, _ in items],
                    [orjson.loads(b)["id"] for _, b in items],
                    now,
                    [b for _, b in items],
                )
                await write_rows(conn, [(rec["rid"], r) for rec, r in zip(rids, rows, strict=True)])
            write_time += time.perf_counter() - t1
            extract_time += t1 - t0
            written += len(items)

        for k in range(copies):
            for template in templates:
                if written + len(pending) >= total:
                    break
                pending.append((template["resourceType"], clone(template, k)))
                if len(pending) >= batch:
                    await flush(pending)
                    pending = []
                    if written % (batch * 20) == 0:
                        rate = written / (time.perf_counter() - started)
                        print(f"  {written:>9,} resources  {rate:,.0f}/s", flush=True)
        if pending:
            await flush(pending)
    elapsed = time.perf_counter() - started
    print(f"ingest: {written:,} resources in {elapsed:.1f} s = {written / elapsed:,.0f}/s "
          f"(extract {extract_time:.1f} s on {workers} processes, write {write_time:.1f} s)")  # fmt: skip
    t0 = time.perf_counter()
    await conn.execute("VACUUM ANALYZE")  # what autovacuum reaches in steady state (visibility map)
    print(f"vacuum analyze: {time.perf_counter() - t0:.1f} s")
    sizes = await conn.fetch(
        "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) s, reltuples::bigint n FROM pg_class"
        " WHERE relname LIKE 'search\\_%' AND relkind = 'r' OR relname = 'resources' ORDER BY relname"
    )
    for rec in sizes:
        print(f"  {rec['relname']:<18} {rec['n']:>12,} rows  {rec['s']}")
    await conn.close()


def queries(
    templates: list[dict[str, Any]], copies: int, seed: int
) -> list[tuple[str, list[tuple[str, str]]]]:
    """(label, parameters): one instance of each query template, values drawn from the data."""
    rnd = random.Random(seed)
    patients = [t for t in templates if t["resourceType"] == "Patient" and t.get("identifier")]
    named = [p for p in patients if p.get("name") and p["name"][0].get("family")]
    observations = [t for t in templates if t["resourceType"] == "Observation"]
    conditions = [t for t in templates if t["resourceType"] == "Condition"]

    def k() -> int:
        return rnd.randrange(copies)

    def pick(items: list[dict[str, Any]]) -> dict[str, Any]:
        return rnd.choice(items)

    def ident(p: dict[str, Any]) -> str:
        i = p["identifier"][0]
        return f"{i.get('system', '')}|{i['value']}-{k()}"

    def code(r: dict[str, Any]) -> str:
        c = r["code"]["coding"][0]
        return f"{c['system']}|{c['code']}"

    return [
        ("Patient?identifier=sys|value", [("identifier", ident(pick(patients)))]),
        ("Patient?_id", [("_id", f"{pick(patients)['id']}-{k()}")]),
        ("Patient?family (common)", [("family", pick(named)["name"][0]["family"])]),
        ("Patient?name-pinyin", [("name-pinyin", "chen ming")]),
        (
            "Patient?birthdate=day",
            [("birthdate", pick([p for p in patients if "birthDate" in p])["birthDate"])],
        ),
        ("Observation?subject=Patient/x", [("subject", f"Patient/{pick(patients)['id']}-{k()}")]),
        ("Observation?code=sys|code", [("code", code(pick(observations)))]),
        ("Observation?date=ge2024-06", [("date", "ge2024-06")]),
        ("Observation?value-quantity=gt", [("value-quantity", "gt100")]),
        ("Condition?code", [("code", code(pick(conditions)))]),
        ("Encounter?patient (chain)", [("patient.identifier", ident(pick(patients)))]),
        (
            "Patient?_has:Observation",
            [("_has:Observation:patient:code", code(pick(observations))), ("_count", "5")],
        ),
        (
            "Observation?subject&_sort=-date",
            [("subject", f"Patient/{pick(patients)['id']}-{k()}"), ("_sort", "-date")],
        ),
    ]


async def run_queries(dsn: str, templates: list[dict[str, Any]], copies: int, repeat: int) -> None:
    from phix.search.registry import load_registry
    from phix.search.service import search

    registry = load_registry(ROOT / "profiles")
    conn = await asyncpg.connect(dsn)
    await conn.execute("SET TIME ZONE 'UTC'")
    print(f"\n{'query':<34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  matches(first page)")
    instances = [dict(queries(templates, copies, seed)) for seed in range(repeat)]
    for label in instances[0]:
        times: list[float] = []
        sizes: list[int] = []
        for instance in instances:
            params = instance[label]
            res_type = label.split("?", 1)[0]
            t0 = time.perf_counter()
            bundle = await search(
                conn,
                registry,
                res_type,
                params,
                base_url="http://bench/fhir",
                default_count=20,
                max_count=1000,
            )
            times.append((time.perf_counter() - t0) * 1000)
            sizes.append(len(bundle["entry"]))
        times.sort()
        p50, p95, p99 = (times[min(len(times) - 1, int(q * len(times)))] for q in (0.5, 0.95, 0.99))
        mean = statistics.mean(sizes)
        print(f"{label:<34} {p50:8.2f} {p95:8.2f} {p99:8.2f} {times[-1]:8.2f}  {mean:.1f}")
    await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--repeat", type=int, default=200, help="runs per query template")
    parser.add_argument("--dsn", help="use this (empty, migrated or not) database instead of an embedded one")
    parser.add_argument("--queries-only", action="store_true", help="skip ingest (data already loaded)")
    args = parser.parse_args()
    # SIGTERM/SIGHUP unwind like Ctrl-C, so the embedded server is stopped and its temp dir removed.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    from phix.storage.migrate import apply_migrations

    templates = load_templates()
    copies = -(-args.resources // len(templates))
    embedded = None
    data_dir = None
    dsn = args.dsn
    if dsn is None:
        from phix.storage.embedded import EmbeddedPostgres

        data_dir = Path(tempfile.mkdtemp(prefix="phix-bench-search-index-"))
        embedded = EmbeddedPostgres(data_dir)
        dsn = embedded.start()
    try:

        async def migrate() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await apply_migrations(conn)
            finally:
                await conn.close()

        asyncio.run(migrate())
        print(f"{len(templates):,} template resources x {copies} copies -> {args.resources:,} resources")
        if not args.queries_only:
            asyncio.run(ingest(dsn, templates, args.resources, args.batch, args.workers))
        asyncio.run(run_queries(dsn, templates, copies, args.repeat))
    finally:
        if embedded is not None:
            embedded.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
