"""``phix reindex``: re-extract the search index of every current resource.

Run it after adding or changing SearchParameters in ``profiles/`` (or after upgrading the search
engine). Works in batches of resources, one transaction per batch, so it can run while the server
serves traffic; each batch replaces the rows of its resources atomically.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import asyncpg
import orjson

from phix.search.indexer import index_many
from phix.search.registry import Registry, load_registry


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("reindex", help="rebuild the search index of current resources")
    parser.add_argument("--type", action="append", dest="types", help="only this resource type (repeatable)")
    parser.add_argument("--batch", type=int, default=500, help="resources per transaction (default 500)")
    parser.add_argument("--profiles", type=Path, help="SearchParameter folder (default ./profiles)")
    parser.add_argument("--data-dir", type=Path, help="data directory of the embedded database")
    parser.set_defaults(func=reindex_command)


async def reindex(
    conn: asyncpg.Connection, registry: Registry, types: list[str] | None = None, batch: int = 500
) -> int:
    """Re-index every current resource (of ``types``); returns how many were indexed."""
    last, done = 0, 0
    while True:
        rows = await conn.fetch(
            "SELECT rid, res_type, body FROM resources WHERE rid > $1 AND NOT deleted"
            " AND ($2::text[] IS NULL OR res_type = ANY($2::text[])) ORDER BY rid LIMIT $3",
            last,
            types,
            batch,
        )
        if not rows:
            return done
        async with conn.transaction():
            await index_many(
                conn, registry, [(r["rid"], r["res_type"], orjson.loads(r["body"])) for r in rows]
            )
        last = rows[-1]["rid"]
        done += len(rows)


def reindex_command(args: argparse.Namespace) -> int:
    from phix.search.integration import profiles_dir
    from phix.settings import load_settings
    from phix.storage.database import resolve_database_url
    from phix.storage.migrate import apply_migrations

    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    registry = load_registry(args.profiles or profiles_dir(settings))
    dsn, embedded = resolve_database_url(settings)

    async def run() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            await apply_migrations(conn)
            await conn.execute("SET TIME ZONE 'UTC'")
            return await reindex(conn, registry, args.types, args.batch)
        finally:
            await conn.close()

    started = time.perf_counter()
    try:
        count = asyncio.run(run())
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"reindexed {count} resources in {time.perf_counter() - started:.1f} s")
    return 0
