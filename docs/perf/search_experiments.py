"""Follow-up measurements for docs/perf/search.md, on a database left by ``bench/search.py --keep``.

    .venv/bin/python docs/perf/search_experiments.py /tmp/phix-bench-search-XXXX/data [--only A,B,...]

The server must be stopped (this starts the embedded PostgreSQL of that data dir itself). Nothing
is changed: writes happen inside transactions that are rolled back.

A. ``$everything``: the compartment statement of ``fhir/operations/everything.py`` against the one
   it replaced in 1d63c76 (an ``OR`` of the two rid sources); the same rows are checked.
B. ``Patient?birthdate=geX&birthdate=ltY``: the statement the search service sends (captured from
   ``service.search``) against one where the two bounds share one ``EXISTS`` with an index range
   bounded at both ends (``low > X - 1 year 1 day``: a ``date`` value spans at most a year).
C. Index rows: the per-resource statement of ``search/indexer.py`` with its 7 deletes (before
   7b425f4), inserts only (first versions, now), and one statement per batch of 100 / 1,000.
D. In-process CPU per resource: validation, index extraction, JSON parse (the mix of the data).
E. Round trips: a nested transaction (SAVEPOINT + RELEASE) and ``SELECT 1``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))


def ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))]
    return f"median {statistics.median(samples):8.2f} ms  p99 {p99:8.2f} ms  (n={len(samples)})"


async def timed(conn: asyncpg.Connection, sql: str, args: list[Any]) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    rows = await conn.fetch(sql, *args)
    return (time.perf_counter() - t0) * 1000, rows


# -- A: $everything ----------------------------------------------------------------------------------

# The statement before commit 1d63c76 (an OR of the Patient rows and the reference index): with a
# LIMIT the planner walks resources in rid order and probes the reference index for every row.
OR_SQL = """
SELECT r.rid, r.res_type, r.res_id, r.body FROM resources r
WHERE NOT r.deleted AND r.rid > $3
  AND ($4::timestamptz IS NULL OR r.last_updated >= $4)
  AND (
    (r.res_type = 'Patient' AND r.res_id = ANY($2::text[]) AND $7)
    OR r.rid IN (
      SELECT s.rid FROM search_reference s
      WHERE s.ph = ANY($1::bigint[]) AND s.target_type = 'Patient' AND s.target_id = ANY($2::text[])
    )
  )
  AND (
    $5::timestamptz IS NULL
    OR NOT EXISTS (SELECT 1 FROM search_date d WHERE d.rid = r.rid AND d.ph = ANY($8::bigint[]))
    OR EXISTS (
      SELECT 1 FROM search_date d WHERE d.rid = r.rid AND d.ph = ANY($8::bigint[])
        AND d.high > $5 AND d.low < $6
    )
  )
ORDER BY r.rid
LIMIT $9
"""


async def everything_args(
    conn: asyncpg.Connection, registry: Any, pid: str, cursor: int, count: int
) -> list[Any]:
    from phix.mpi.links import resident_patients
    from phix.search.registry import param_hash

    hashes: list[int] = []
    date_hashes: list[int] = []
    for res_type in registry.compartment_types("Patient"):
        hashes.extend(param_hash(res_type, p) for p in registry.compartment_params("Patient", res_type))
        if registry.param(res_type, "date") is not None:
            date_hashes.append(param_hash(res_type, "date"))
    ids = await resident_patients(conn, pid)
    if pid not in ids:
        ids = [pid, *ids]
    return [hashes, ids, cursor, None, None, None, True, date_hashes, count + 1]


async def experiment_a(conn: asyncpg.Connection, registry: Any, heavy: str | None) -> None:
    from phix.fhir.operations.everything import _COMPARTMENT_SQL

    print("\nA. $everything compartment statement: before 1d63c76 (OR) vs now (materialised UNION)")
    pids = [
        r["res_id"]
        for r in await conn.fetch(
            "SELECT res_id FROM resources r WHERE res_type = 'Patient' AND NOT deleted"
            " AND NOT EXISTS (SELECT 1 FROM mpi_golden g WHERE g.golden_id = r.res_id)"
            " ORDER BY random() LIMIT 20"
        )
    ]
    cases = [(f"ordinary resident #{i}", pid, 100) for i, pid in enumerate(pids)]
    if heavy:
        cases.append(("1,000-resource resident, _count=1000", heavy, 1000))
    results: dict[str, list[float]] = {"before": [], "now": []}
    for label, pid, count in cases:
        args = await everything_args(conn, registry, pid, 0, count)
        page = 0
        while True:
            page += 1
            per: dict[str, float] = {}
            rows_by: dict[str, list[int]] = {}
            for name, sql in (("before", OR_SQL), ("now", _COMPARTMENT_SQL)):
                runs = []
                for _ in range(3):
                    took, rows = await timed(conn, sql, args)
                    runs.append(took)
                per[name] = statistics.median(runs)
                rows_by[name] = [r["rid"] for r in rows]
            assert rows_by["before"] == rows_by["now"], f"{label}: different rows"
            if count == 1000:
                print(
                    f"  {label}, page {page}: {len(rows_by['now'])} rows, before {per['before']:.1f} ms,"
                    f" now {per['now']:.1f} ms"
                )
            else:
                for name, value in per.items():
                    results[name].append(value)
            if len(rows_by["now"]) <= count:
                break
            args[2] = rows_by["now"][count - 1]  # the next page's cursor, as the route does
    print(f"  ordinary residents (first page of 100), same rows: before {ms(results['before'])}")
    print(f"  {'':<51} now    {ms(results['now'])}")
    args = await everything_args(conn, registry, pids[0], 0, 100)
    plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + _COMPARTMENT_SQL, *args)
    print("  EXPLAIN (ANALYZE, BUFFERS) of the statement now, ordinary resident:")
    print("\n".join("    " + r[0] for r in plan))


# -- B: birthdate range --------------------------------------------------------------------------


class Capture:
    """Records the statements the search service sends (and runs them)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return await self._conn.fetch(sql, *args)


async def experiment_b(conn: asyncpg.Connection, registry: Any) -> None:
    from phix.search.service import search

    print("\nB. Patient?birthdate=geX&birthdate=ltY (a month): two EXISTS vs one bounded EXISTS")
    rng = random.Random(3)
    births = [
        r["d"]
        for r in await conn.fetch(
            "SELECT convert_from(body, 'UTF8')::jsonb->>'birthDate' AS d"
            " FROM resources TABLESAMPLE SYSTEM (5) WHERE res_type = 'Patient'"
            " AND convert_from(body, 'UTF8')::jsonb ? 'birthDate' LIMIT 2000"
        )
    ]
    current: list[float] = []
    merged: list[float] = []
    service: list[float] = []
    shown = False
    for _ in range(30):
        day = datetime.fromisoformat(rng.choice(births)[:10])
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        params = [("birthdate", f"ge{start:%Y-%m-%d}"), ("birthdate", f"lt{end:%Y-%m-%d}")]
        cap = Capture(conn)
        t0 = time.perf_counter()
        await search(
            cap, registry, "Patient", params, base_url="http://x/fhir", default_count=20, max_count=1000
        )
        service.append((time.perf_counter() - t0) * 1000)
        sql, args = cap.statements[0]
        old = (
            "EXISTS (SELECT 1 FROM search_date i1 WHERE i1.rid = r.rid AND i1.ph = $3::bigint AND"
            " i1.high > $2::timestamptz) AND EXISTS (SELECT 1 FROM search_date i2 WHERE i2.rid = r.rid"
            " AND i2.ph = $5::bigint AND i2.low < $4::timestamptz)"
        )
        new = (
            "EXISTS (SELECT 1 FROM search_date i1 WHERE i1.rid = r.rid AND i1.ph = $3::bigint AND"
            " i1.high > $2::timestamptz AND i1.low > $2::timestamptz - interval '1 year 1 day'"
            " AND i1.ph = $5::bigint AND i1.low < $4::timestamptz)"
        )
        assert old in sql, sql
        variant = sql.replace(old, new)
        await conn.execute("BEGIN; SET LOCAL plan_cache_mode = force_custom_plan")
        try:
            a, rows_a = await timed(conn, sql, list(args))
            a, rows_a = await timed(conn, sql, list(args))
            b, rows_b = await timed(conn, variant, list(args))
            b, rows_b = await timed(conn, variant, list(args))
            if not shown:
                shown = True
                for label, text in (("current", sql), ("one bounded EXISTS", variant)):
                    plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + text, *args)
                    print(f"  EXPLAIN (ANALYZE, BUFFERS), {label}, {params}:")
                    print(
                        "\n".join(
                            "    " + r[0]
                            for r in plan
                            if "Buffers" in r[0] or "Time" in r[0] or "Scan" in r[0] or "Join" in r[0]
                        )
                    )
        finally:
            await conn.execute("ROLLBACK")
        assert [r[0] for r in rows_a] == [r[0] for r in rows_b], "different rows"
        current.append(a)
        merged.append(b)
    print(f"  search service in-process (current)  {ms(service)}")
    print(f"  page statement, current              {ms(current)}")
    print(f"  page statement, one bounded EXISTS   {ms(merged)}   (same rows)")


# -- C: index rows -----------------------------------------------------------------------------------


async def experiment_c(conn: asyncpg.Connection, registry: Any, n: int) -> None:
    from phix.search import indexer

    print(f"\nC. Index rows of {n} resources (a random sample), inside a rolled-back transaction")
    recs = await conn.fetch(
        "SELECT rid, res_type, body FROM resources TABLESAMPLE SYSTEM (2) WHERE NOT deleted LIMIT $1", n
    )
    t0 = time.perf_counter()
    items = [(r["rid"], indexer.prepare_rows(registry, r["res_type"], orjson.loads(r["body"]))) for r in recs]
    extract_ms = (time.perf_counter() - t0) * 1000 / len(recs)
    rows = sum(len(v) for _, r in items for v in r.values())
    print(f"  extraction: {extract_ms:.3f} ms per resource, {rows / len(items):.1f} index rows per resource")
    rids = [rid for rid, _ in items]

    async def clear() -> None:
        for table in indexer.TABLES:
            await conn.execute(f"DELETE FROM {table} WHERE rid = ANY($1::bigint[])", rids)

    async def per_statement(size: int, fresh: bool) -> float:
        await clear()
        t0 = time.perf_counter()
        for i in range(0, len(items), size):
            await indexer.write_rows(conn, items[i : i + size], fresh=fresh)
        return (time.perf_counter() - t0) * 1000 / len(items)

    tr = conn.transaction()
    await tr.start()
    try:
        figures = [
            (
                "one statement per resource, 7 deletes + 7 inserts (before 7b425f4)",
                await per_statement(1, False),
            ),
            ("one statement per resource, 7 inserts (first versions, now)", await per_statement(1, True)),
            ("one statement per 100 resources, 7 inserts", await per_statement(100, True)),
            ("one statement per 1,000 resources, 7 inserts", await per_statement(1000, True)),
        ]
    finally:
        await tr.rollback()
    for label, value in figures:
        print(f"  {label:<70} {value:.3f} ms per resource (wall)")


# -- D: in-process CPU ---------------------------------------------------------------------------


async def experiment_d(conn: asyncpg.Connection, registry: Any, n: int) -> None:
    from phix.fhir import fhirjson
    from phix.fhir.validation import validate
    from phix.search import indexer

    print(f"\nD. In-process CPU per resource ({n} stored resources, the data's type mix), one core")
    recs = await conn.fetch(
        "SELECT res_type, body FROM resources TABLESAMPLE SYSTEM (2) WHERE NOT deleted LIMIT $1", n
    )
    bodies = [r["body"] for r in recs]
    parsed = [orjson.loads(b) for b in bodies]
    for p in parsed[:50]:
        validate(p["resourceType"], p)
    timings = {}
    t0 = time.process_time()
    for b in bodies:
        orjson.loads(b)
    timings["orjson.loads"] = time.process_time() - t0
    t0 = time.process_time()
    for b in bodies:
        fhirjson.loads(b)
    timings["fhirjson.loads (request parsing)"] = time.process_time() - t0
    t0 = time.process_time()
    for p in parsed:
        validate(p["resourceType"], p)
    timings["validate (fhir.resources + walk)"] = time.process_time() - t0
    t0 = time.process_time()
    for p in parsed:
        indexer.prepare_rows(registry, p["resourceType"], p)
    timings["search index extraction"] = time.process_time() - t0
    t0 = time.process_time()
    for p in parsed:
        fhirjson.dumps(p)
    timings["fhirjson.dumps (stored body)"] = time.process_time() - t0
    for name, seconds in timings.items():
        print(f"  {name:<36} {seconds * 1000 / len(bodies):.3f} ms")


# -- E: round trips -------------------------------------------------------------------------------


async def experiment_e(conn: asyncpg.Connection, n: int = 2000) -> None:
    print("\nE. Round trips on the Unix socket")
    async with conn.transaction():
        t0 = time.perf_counter()
        for _ in range(n):
            async with conn.transaction():
                pass
        savepoint = (time.perf_counter() - t0) * 1000 / n
    t0 = time.perf_counter()
    for _ in range(n):
        await conn.fetchval("SELECT 1")
    select = (time.perf_counter() - t0) * 1000 / n
    print(f"  nested transaction (SAVEPOINT + RELEASE): {savepoint:.3f} ms;  SELECT 1: {select:.3f} ms")


async def run(dsn: str, only: set[str], n: int) -> None:
    from phix.search.registry import load_registry

    registry = load_registry(ROOT / "profiles")
    conn = await asyncpg.connect(dsn)
    await conn.execute("SET TIME ZONE 'UTC'")
    try:
        heavy = await conn.fetchval(
            "SELECT r.res_id FROM resources r JOIN search_token t ON t.rid = r.rid"
            " WHERE r.res_type = 'Patient' AND t.code = 'HEAVY-0001' LIMIT 1"
        )
        print(
            f"database: {await conn.fetchval('SELECT count(*) FROM resources'):,} resources; "
            f"heavy resident {heavy}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
        if "A" in only:
            await experiment_a(conn, registry, heavy)
        if "B" in only:
            await experiment_b(conn, registry)
        if "C" in only:
            await experiment_c(conn, registry, n)
        if "D" in only:
            await experiment_d(conn, registry, n)
        if "E" in only:
            await experiment_e(conn)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, help="the kept bench temp dir's data/ (holds pg/)")
    parser.add_argument("--only", default="A,B,C,D,E")
    parser.add_argument("--resources", type=int, default=2000, help="sample size for C and D")
    args = parser.parse_args()
    from phix.storage.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(args.data_dir)
    dsn = embedded.start()
    try:
        asyncio.run(run(dsn, set(args.only.split(",")), args.resources))
    finally:
        embedded.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
