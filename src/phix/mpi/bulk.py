"""Bulk linking: stored Patients linked in batches (initial loads, re-linking, benchmarks).

A batch is one transaction of :meth:`phix.mpi.engine.Engine.link`: one round trip per table for
features, candidates and links, then the golden records it touched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import asyncpg
import orjson

from phix.mpi.engine import Engine, Item, Outcome
from phix.storage.context import RequestContext
from phix.storage.repository import Repository, WriteListener


async def store_patients(
    conn: asyncpg.Connection,
    patients: Sequence[tuple[str, dict[str, Any]]],
    listeners: Sequence[WriteListener] = (),
    validated: bool = True,
) -> list[Item]:
    """Store ``(id, Patient)`` pairs (PUT semantics) in one transaction, without linking them."""
    repo = Repository(conn, RequestContext(client="mpi-bulk"), listeners)
    items: list[Item] = []
    async with conn.transaction():
        for pid, resource in patients:
            version, _ = await repo.update("Patient", pid, resource, validated=validated)
            items.append(Item(pid, version.rid, orjson.loads(version.body or b"{}")))
    return items


async def link_items(
    conn: asyncpg.Connection, engine: Engine, items: Iterable[Item], batch: int = 500
) -> AsyncIterator[list[Outcome]]:
    """Link items batch by batch, yielding each batch's outcomes."""
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= batch:
            yield await engine.link(conn, chunk)
            chunk = []
    if chunk:
        yield await engine.link(conn, chunk)


async def relink_stored(conn: asyncpg.Connection, engine: Engine, batch: int = 500) -> int:
    """Link every stored source Patient the index does not know yet; returns how many."""
    done = 0
    while True:
        rows = await conn.fetch(
            """
            SELECT r.res_id, r.rid, r.body FROM resources r
            WHERE r.res_type = 'Patient' AND NOT r.deleted
              AND NOT EXISTS (SELECT 1 FROM mpi_record m WHERE m.rid = r.rid)
              AND NOT EXISTS (SELECT 1 FROM mpi_golden g WHERE g.golden_id = r.res_id)
            ORDER BY r.rid LIMIT $1
            """,
            batch,
        )
        if not rows:
            return done
        outcomes = await engine.link(
            conn, [Item(r["res_id"], r["rid"], orjson.loads(r["body"])) for r in rows]
        )
        linked = [o for o in outcomes if o.status != "deferred"]
        if not linked:
            return done  # everything contended: the worker will take them
        done += len(linked)
