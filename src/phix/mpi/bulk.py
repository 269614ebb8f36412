"""Bulk linking: stored Patients linked in batches (initial loads, re-linking, benchmarks).

A batch is one transaction of :meth:`phix.mpi.engine.Engine.link`: one round trip per table for
features, candidates and links, then the golden records it touched (one batched write).

While a bulk run links, the objects that existed before it (the name dictionaries, the caller's
data) are frozen out of the garbage collector's scans (:func:`gc.freeze`): linking allocates
millions of short-lived objects, and each full collection would otherwise walk the whole heap
again (a quarter of the linking CPU with 50k records held in memory).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
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
    """Store ``(id, Patient)`` pairs (PUT semantics, distinct ids) in one transaction and a few
    statements (:meth:`Repository.put_many`), without linking them."""
    repo = Repository(conn, RequestContext(client="mpi-bulk"), listeners)
    versions = await repo.put_many("Patient", patients, validated=validated)
    return [Item(v.res_id, v.rid, orjson.loads(v.body or b"{}")) for v in versions]


async def link_items(
    conn: asyncpg.Connection,
    engine: Engine,
    items: Iterable[Item],
    batch: int = 500,
    more: Sequence[asyncpg.Connection] = (),
) -> AsyncIterator[list[Outcome]]:
    """Link items batch by batch, yielding outcomes as batches finish.

    With ``more`` connections, that many further batches link at the same time: while one batch
    is in Python (features, scoring), PostgreSQL writes another, so a bulk load uses both of two
    cores. The engine's locks keep concurrent batches apart exactly as they keep concurrent
    hospitals apart: a record whose blocking keys another batch holds is deferred. Deferred
    records are linked again once the batches are done, so each outcome yielded is final (a
    record still deferred then is contended by another transaction; the linker worker takes it).
    """
    with frozen_heap():
        deferred: list[Item] = []
        chunks = iter(_chunks(items, batch))
        free = [conn, *more]
        running: dict[asyncio.Task[list[Outcome]], tuple[asyncpg.Connection, list[Item]]] = {}
        try:
            while True:
                while free:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    link = free.pop()
                    running[asyncio.ensure_future(engine.link(link, chunk))] = (link, chunk)
                if not running:
                    break
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    link, chunk = running.pop(task)
                    free.append(link)
                    outcomes = task.result()
                    held = {o.patient_id for o in outcomes if o.status == "deferred"}
                    deferred += [i for i in chunk if i.patient_id in held]
                    yield [o for o in outcomes if o.status != "deferred"]
        finally:
            for task in running:
                task.cancel()
        while deferred:  # one batch at a time now: nothing of this run holds their keys
            waiting: set[str] = set()
            for chunk in _chunks(deferred, batch):
                outcomes = await engine.link(conn, chunk)
                waiting |= {o.patient_id for o in outcomes if o.status == "deferred"}
                yield [o for o in outcomes if o.status != "deferred"]
            if len(waiting) == len(deferred):  # no progress: contended from outside this run
                yield [Outcome(i.patient_id, "deferred") for i in deferred]
                return
            deferred = [i for i in deferred if i.patient_id in waiting]


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects that exist now out of the collector's scans until the block ends."""
    if gc.get_freeze_count():  # nested, or frozen by the application already
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def relink_stored(
    conn: asyncpg.Connection, engine: Engine, batch: int = 500, more: Sequence[asyncpg.Connection] = ()
) -> int:
    """Link every stored source Patient the index does not know yet; returns how many. With
    ``more`` connections, batches link concurrently (see :func:`link_items`)."""
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
            batch * (1 + len(more)) * 4,
        )
        if not rows:
            return done
        items = [Item(r["res_id"], r["rid"], orjson.loads(r["body"])) for r in rows]
        linked = 0
        async for outcomes in link_items(conn, engine, items, batch, more):
            linked += sum(o.status != "deferred" for o in outcomes)
        if not linked:
            return done  # everything contended: the worker will take them
        done += linked
