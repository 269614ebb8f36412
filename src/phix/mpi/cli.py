"""``phix mpi ...``: patient-index commands.

* ``phix mpi estimate`` re-estimates the match weights from the data (u from random pairs, m by
  EM over blocked pairs) and stores them as a new model version (``--dry-run`` only prints them,
  ``--out FILE`` also writes the model JSON). Running servers pick the new model up within a
  minute.
* ``phix mpi link`` links every stored Patient the index does not know yet (after a bulk import
  made without the index, or to rebuild it), in batches, two at a time by default
  (``--connections``): one links in Python while PostgreSQL writes the other.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("mpi", help="master patient index: estimate weights, link stored patients")
    commands = parser.add_subparsers(dest="mpi_command", required=True)
    est = commands.add_parser("estimate", help="re-estimate the match weights from the data (EM)")
    est.add_argument("--records", type=int, default=5000, help="records whose candidate pairs feed EM")
    est.add_argument("--random-pairs", type=int, default=50_000, help="random pairs for the u-probabilities")
    est.add_argument("--iterations", type=int, default=50)
    est.add_argument("--dry-run", action="store_true", help="print the new weights, store nothing")
    est.add_argument(
        "--calibrate-thresholds",
        action="store_true",
        help="also set the thresholds from the estimated prior odds",
    )
    est.add_argument("--out", type=Path, help="also write the model as JSON to this file")
    est.add_argument("--data-dir", type=Path, help="data directory of the embedded database")
    est.set_defaults(func=estimate_command)
    link = commands.add_parser("link", help="link stored Patients the index does not know yet")
    link.add_argument("--batch", type=int, default=250)
    link.add_argument(
        "--connections", type=int, default=2, help="batches linked at once (one per core is plenty)"
    )
    link.add_argument("--data-dir", type=Path, help="data directory of the embedded database")
    link.set_defaults(func=link_command)


def _run(args: argparse.Namespace, work: Callable[[asyncpg.Connection, str], Awaitable[int]]) -> int:
    from phix.settings import load_settings
    from phix.storage.database import resolve_database_url
    from phix.storage.migrate import apply_migrations

    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    dsn, embedded = resolve_database_url(settings)

    async def run() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            await apply_migrations(conn)
            await conn.execute("SET TIME ZONE 'UTC'")
            return await work(conn, dsn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    finally:
        if embedded is not None:
            embedded.stop()


def estimate_command(args: argparse.Namespace) -> int:
    from phix.mpi.config import load_model, save_model
    from phix.mpi.em import estimate

    async def work(conn: asyncpg.Connection, _dsn: str) -> int:
        current = await load_model(conn)
        started = time.perf_counter()
        try:
            result = await estimate(
                conn, current, args.records, args.random_pairs, args.iterations, args.calibrate_thresholds
            )
        except ValueError as exc:
            print(f"cannot estimate: {exc}")
            return 1
        print(
            f"EM: {result.blocked_pairs} blocked pairs, {result.random_pairs} random pairs, "
            f"{result.iterations} iterations, match share {result.match_share:.4f}, "
            f"{time.perf_counter() - started:.1f} s"
        )
        print("\n".join(result.log))
        if args.out:
            args.out.write_text(result.model.model_dump_json(indent=2, exclude={"version"}), "utf-8")
            print(f"wrote {args.out}")
        if args.dry_run:
            return 0
        version = await save_model(conn, result.model, f"EM from {result.blocked_pairs} blocked pairs")
        print(f"stored as model version {version}")
        return 0

    return _run(args, work)


def link_command(args: argparse.Namespace) -> int:
    from phix.mpi.bulk import relink_stored
    from phix.mpi.engine import Engine

    async def work(conn: asyncpg.Connection, dsn: str) -> int:
        engine = Engine()
        await engine.reload(conn)
        more = [await asyncpg.connect(dsn) for _ in range(max(args.connections, 1) - 1)]
        started = time.perf_counter()
        try:
            for extra in more:
                await extra.execute("SET TIME ZONE 'UTC'")
            done = await relink_stored(conn, engine, args.batch, more)
        finally:
            for extra in more:
                await extra.close()
        elapsed = time.perf_counter() - started
        print(f"linked {done} records in {elapsed:.1f} s ({done / max(elapsed, 1e-9):.0f}/s)")
        return 0

    return _run(args, work)
