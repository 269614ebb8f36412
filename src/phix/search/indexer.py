"""Write resources' index rows (inside the caller's write transaction), in one round trip.

:func:`index_resource` / :func:`index_many` run a single statement whose data-modifying CTEs delete
the old rows of the given rids from every index table and insert the new ones from ``unnest`` of
column arrays (the deletes do not see the rows inserted by the same statement). The statement has
a fixed shape, so asyncpg prepares it once per connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from phix.search import extract as extraction
from phix.search.registry import Registry

# Column name -> PostgreSQL array type, per table (after rid, ph, grp).
_TYPES: dict[str, dict[str, str]] = {
    "search_string": {"norm": "text", "exact": "text"},
    "search_token": {"system": "text", "code": "text", "text": "text"},
    "search_date": {"low": "timestamptz", "high": "timestamptz"},
    "search_number": {"low": "numeric", "high": "numeric"},
    "search_quantity": {
        "system": "text",
        "code": "text",
        "low": "numeric",
        "high": "numeric",
        "canon_code": "text",
        "canon_low": "numeric",
        "canon_high": "numeric",
    },
    "search_reference": {"target_type": "text", "target_id": "text", "target_url": "text"},
    "search_uri": {"uri": "text"},
}
TABLES: tuple[str, ...] = tuple(_TYPES)


def _statement(replace: bool = True) -> str:
    """The write statement; ``replace=False`` leaves out the deletes (a resource's first version
    has no index rows yet, and the deletes were a third of the statement's cost on creates)."""
    ctes = [f"d_{t} AS (DELETE FROM {t} WHERE rid = ANY($1::bigint[]))" for t in TABLES] if replace else []
    n = 2
    for table, columns in _TYPES.items():
        names = ["rid", "ph", "grp", *columns]
        types = ["bigint", "bigint", "smallint", *columns.values()]
        params = ", ".join(f"${n + i}::{t}[]" for i, t in enumerate(types))
        n += len(types)
        ctes.append(f"i_{table} AS (INSERT INTO {table} ({', '.join(names)}) SELECT * FROM unnest({params}))")
    return "WITH " + ",\n".join(ctes) + "\nSELECT cardinality($1::bigint[])"


_WRITE = _statement()
_INSERT = _statement(replace=False)


def _arguments(rids: list[int], items: Iterable[tuple[int, extraction.Rows]]) -> list[Any]:
    columns: dict[str, list[list[Any]]] = {t: [[] for _ in range(3 + len(c))] for t, c in _TYPES.items()}
    for rid, rows in items:
        for table, values in rows.items():
            cols = columns[table]
            for row in values:
                cols[0].append(rid)
                for i, value in enumerate(row, start=1):
                    cols[i].append(value)
    args: list[Any] = [rids]
    for table in TABLES:
        args.extend(columns[table])
    return args


async def write_rows(
    conn: asyncpg.Connection, items: list[tuple[int, extraction.Rows]], *, fresh: bool = False
) -> None:
    """Replace the index rows of each ``(rid, rows)`` (rows from :func:`prepare_rows`); with
    ``fresh`` the rids are known to have no rows yet (first versions) and nothing is deleted."""
    if items:
        await conn.execute(_INSERT if fresh else _WRITE, *_arguments([rid for rid, _ in items], items))


def prepare_rows(registry: Registry, res_type: str, resource: dict[str, Any]) -> extraction.Rows:
    """Extraction only (pure CPU work), e.g. to run in a worker before the write transaction."""
    return extraction.extract(registry, res_type, resource)


async def index_resource(
    conn: asyncpg.Connection,
    registry: Registry,
    rid: int,
    res_type: str,
    resource: dict[str, Any],
    *,
    fresh: bool = False,
) -> None:
    """Replace all index rows of ``rid`` with those extracted from ``resource``."""
    await write_rows(conn, [(rid, prepare_rows(registry, res_type, resource))], fresh=fresh)


async def index_many(
    conn: asyncpg.Connection, registry: Registry, items: Iterable[tuple[int, str, dict[str, Any]]]
) -> None:
    """:func:`index_resource` for many ``(rid, res_type, resource)`` at once (bundles, reindex)."""
    await write_rows(conn, [(rid, prepare_rows(registry, t, r)) for rid, t, r in items])


async def clear_resource(conn: asyncpg.Connection, rid: int) -> None:
    """Remove every index row of ``rid`` (on delete)."""
    await write_rows(conn, [(rid, {})])
