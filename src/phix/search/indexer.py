"""Write resources' index rows (inside the caller's write transaction), in one round trip.

:func:`write_rows` (and :func:`index_many`) run a single statement whose data-modifying CTEs delete
the old rows of the given rids from every index table and insert the new ones from ``unnest`` of
column arrays (the deletes do not see the rows inserted by the same statement), into the tables
that get rows only. There is one statement shape per set of tables, so asyncpg prepares each once
per connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
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


@lru_cache(maxsize=256)
def _statement(replace: bool, tables: tuple[str, ...]) -> str:
    """The write statement inserting into ``tables`` (those with rows; a fixed shape per set of
    tables, so asyncpg prepares each once per connection). ``replace`` adds a delete from every
    table; a resource's first version has no index rows yet and is written without them (the
    deletes were a third of the statement's cost on creates)."""
    ctes = [f"d_{t} AS (DELETE FROM {t} WHERE rid = ANY($1::bigint[]))" for t in TABLES] if replace else []
    n = 2
    for table in tables:
        columns = _TYPES[table]
        names = ["rid", "ph", "grp", *columns]
        types = ["bigint", "bigint", "smallint", *columns.values()]
        params = ", ".join(f"${n + i}::{t}[]" for i, t in enumerate(types))
        n += len(types)
        ctes.append(f"i_{table} AS (INSERT INTO {table} ({', '.join(names)}) SELECT * FROM unnest({params}))")
    if not ctes:
        return "SELECT cardinality($1::bigint[])"
    return "WITH " + ",\n".join(ctes) + "\nSELECT cardinality($1::bigint[])"


def _arguments(
    rids: list[int], items: Iterable[tuple[int, extraction.Rows]]
) -> tuple[tuple[str, ...], list[Any]]:
    """The tables that get rows, and the statement's arguments: the rids, then per such table its
    column arrays."""
    columns: dict[str, list[list[Any]]] = {}
    for rid, rows in items:
        for table, values in rows.items():
            if not values:
                continue
            cols = columns.get(table)
            if cols is None:
                cols = columns[table] = [[] for _ in range(3 + len(_TYPES[table]))]
            for row in values:
                cols[0].append(rid)
                for i, value in enumerate(row, start=1):
                    cols[i].append(value)
    tables = tuple(t for t in TABLES if t in columns)
    args: list[Any] = [rids]
    for table in tables:
        args.extend(columns[table])
    return tables, args


async def write_rows(
    conn: asyncpg.Connection, items: list[tuple[int, extraction.Rows]], *, fresh: bool = False
) -> None:
    """Replace the index rows of each ``(rid, rows)`` (rows from :func:`prepare_rows`); with
    ``fresh`` the rids are known to have no rows yet (first versions) and nothing is deleted."""
    if items:
        tables, args = _arguments([rid for rid, _ in items], items)
        if fresh and not tables:
            return
        await conn.execute(_statement(not fresh, tables), *args)


def prepare_rows(registry: Registry, res_type: str, resource: dict[str, Any]) -> extraction.Rows:
    """Extraction only (pure CPU work), e.g. to run in a worker before the write transaction."""
    return extraction.extract(registry, res_type, resource)


async def index_many(
    conn: asyncpg.Connection, registry: Registry, items: Iterable[tuple[int, str, dict[str, Any]]]
) -> None:
    """Replace the index rows of many ``(rid, res_type, resource)`` at once (reindex)."""
    await write_rows(conn, [(rid, prepare_rows(registry, t, r)) for rid, t, r in items])
