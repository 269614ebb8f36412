"""The patient index in the write path: a WriteListener on every Patient write, and the worker
that links deferred records.

In ``sync`` mode (the default) a source Patient is linked inside its own write transaction, so
the response to a create or update already has a resident. A record whose locks are held by a
concurrent writer, every record in ``async`` mode and every write inside :func:`deferred_linking`
(bulk loads) is queued in ``mpi_pending`` and linked by :class:`LinkWorker` within moments; its
state is visible meanwhile (``$mpi-status``). Golden records (``meta.tag`` mpi|golden) are the
index's own output: clients cannot write or delete them.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import asyncpg
import orjson

from phix.errors import Category, FhirError
from phix.mpi.engine import Engine, Item, defer
from phix.mpi.features import is_golden
from phix.storage.repository import Version

log = logging.getLogger(__name__)

MODEL_CHECK_SECONDS = 30.0  # how often a running server looks for a newly estimated model

_deferred: contextvars.ContextVar[bool] = contextvars.ContextVar("mpi_deferred_linking", default=False)


@contextmanager
def deferred_linking() -> Iterator[None]:
    """Queue Patient writes made in this context for the worker instead of linking them inline."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


class MpiListener:
    """Links every institution Patient write (create, update, delete, bundles) to a resident."""

    def __init__(self, engine: Engine, mode: str | None = None) -> None:
        self.engine = engine
        self.mode = mode  # None: the match model's linking mode

    async def after_write(
        self, conn: asyncpg.Connection, version: Version, resource: dict[str, Any] | None
    ) -> None:
        if version.res_type != "Patient":
            return
        # A first version cannot be a resident: every golden record's Patient exists from the
        # moment its mpi_golden row does, so only later versions need the lookup.
        if (resource is not None and is_golden(resource)) or (
            version.version > 1 and await _is_golden_id(conn, version.res_id)
        ):
            raise FhirError(
                Category.CONFLICT,
                f"Patient/{version.res_id} is a resident (golden) record maintained by the patient index;"
                " change the source records or use the $mpi-* stewardship operations",
                expression=["Patient.meta.tag"],
                code="business-rule",
            )
        if _deferred.get() or (self.mode or self.engine.model.linking.mode) == "async":
            await defer(conn, [version.res_id])
            return
        item = Item(version.res_id, version.rid, resource)
        try:
            await self.engine.link(conn, [item])
        except (asyncpg.PostgresError, FhirError):
            raise
        except Exception as exc:  # a bug in matching must not lose the hospital's write
            log.exception(
                "patient index: linking failed; queued for the worker", extra={"patient": version.res_id}
            )
            await defer(conn, [version.res_id], f"{type(exc).__name__}: {exc}")


async def _is_golden_id(conn: asyncpg.Connection, res_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM mpi_golden WHERE golden_id = $1", res_id))


async def drain(conn: asyncpg.Connection, engine: Engine, limit: int = 200) -> int:
    """Link up to ``limit`` due queued records in one transaction; returns how many were taken.
    A batch that fails is put back with a back-off and the error recorded."""
    taken: list[str] = []
    try:
        return await _drain(conn, engine, limit, taken)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if not taken:
            raise
        log.exception("patient index worker: batch failed; retried later")
        async with conn.transaction():
            await defer(conn, taken, f"{type(exc).__name__}: {exc}")
        return len(taken)


async def _drain(conn: asyncpg.Connection, engine: Engine, limit: int, taken: list[str]) -> int:
    async with conn.transaction():
        rows = await conn.fetch(
            """
            SELECT p.patient_id, r.rid, r.deleted, r.body FROM mpi_pending p
            LEFT JOIN resources r ON r.res_type = 'Patient' AND r.res_id = p.patient_id
            WHERE p.not_before <= now() ORDER BY p.queued_at LIMIT $1 FOR UPDATE OF p SKIP LOCKED
            """,
            limit,
        )
        if not rows:
            return 0
        taken += [r["patient_id"] for r in rows]
        unknown = [r["patient_id"] for r in rows if r["rid"] is None]
        if unknown:
            await conn.execute("DELETE FROM mpi_pending WHERE patient_id = ANY($1::text[])", unknown)
        items = [
            Item(r["patient_id"], r["rid"], None if r["deleted"] else orjson.loads(r["body"]))
            for r in rows
            if r["rid"] is not None
        ]
        if items:
            await engine.link(conn, items)
        return len(rows)


class LinkWorker:
    """Background task draining ``mpi_pending`` (``FOR UPDATE SKIP LOCKED``: safe in every process)."""

    def __init__(self, pool: asyncpg.Pool, engine: Engine) -> None:
        self.pool = pool
        self.engine = engine
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mpi-link-worker")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        checked = 0.0
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            linking = self.engine.model.linking
            taken = 0
            try:
                async with self.pool.acquire() as conn:
                    if loop.time() - checked > MODEL_CHECK_SECONDS:
                        checked = loop.time()
                        newest = await conn.fetchval("SELECT max(version) FROM mpi_model")
                        if newest is not None and newest != self.engine.model.version:
                            await self.engine.reload(conn)
                            log.info("patient index: match model version %s loaded", newest)
                    taken = await drain(conn, self.engine, linking.worker_batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("patient index worker: batch failed")
            if not taken:
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), linking.worker_poll_seconds)
