"""The ``phix gateway`` process: the DICOM listener, the indexer and the route workers.

The process runs the application's lifespan (every domain's ``startup``) without serving HTTP,
so FHIR writes go through the same repository and write listeners (search index, patient index)
as the API; ``app.state.role`` is ``"gateway"`` for domains that start background work of their
own. On SIGTERM/SIGINT it stops accepting associations, drains the indexer and exits; on a crash
nothing acknowledged is lost (see :mod:`phix.dicom.store` and :mod:`phix.dicom.queue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import asyncpg
from pydicom.dataset import Dataset

from phix.dicom import cfind
from phix.dicom import query as q
from phix.dicom import queue as route_queue
from phix.dicom.config import DicomSettings
from phix.dicom.deidentify import Deidentifier
from phix.dicom.indexer import Indexer
from phix.dicom.journal import Journal
from phix.dicom.scp import GatewayAE, QueryFailed
from phix.dicom.service import DicomService
from phix.dicom.worker import RouteWorker
from phix.settings import Settings

log = logging.getLogger("phix.gateway")


def _ignore_sigint() -> None:
    """Index workers leave Ctrl-C to the gateway, which shuts the pool down (no tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _warm() -> int:
    import pydicom  # noqa: F401  (import in the worker process before the first batch)

    return 0


def make_find(loop: asyncio.AbstractEventLoop, service: DicomService) -> Any:
    """The C-FIND query service: runs on the event loop, called from association threads."""

    async def run(query: q.Query) -> list[dict[str, Any]]:
        async with service.db.pool.acquire() as conn:
            return await q.run(conn, query)

    def find(level: str, identifier: Dataset) -> list[Dataset]:
        query = cfind.to_query(level, identifier)
        try:
            rows = asyncio.run_coroutine_threadsafe(run(query), loop).result(timeout=30)
        except q.QueryError as exc:
            raise QueryFailed(0xC000, str(exc)) from None
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise QueryFailed(0xA700, f"index unavailable: {type(exc).__name__}") from None
        return [cfind.to_response(level, identifier, row) for row in rows]

    return find


class Gateway:
    """Everything the gateway runs, started and stopped together (also used by tests)."""

    def __init__(self, service: DicomService, secret: str) -> None:
        self.service = service
        self.settings: DicomSettings = service.settings
        self.secret = secret
        self.executor: Executor | None = None
        self.ae: GatewayAE | None = None
        self.indexer: Indexer | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.workers: list[RouteWorker] = []
        self.wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self.journal: Journal | None = None
        self.port = 0

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        s = self.settings
        if s.index_processes > 0:
            self.executor = ProcessPoolExecutor(
                s.index_processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_sigint,
            )
            await loop.run_in_executor(self.executor, _warm)
            self.service.executor = self.executor
        journal = None
        leftover: list[int] = []
        if s.journal:
            journal = Journal(self.service.store.root / "journal", s.journal_segment_bytes)
            leftover = journal.open()
        self.journal = journal
        find = make_find(loop, self.service)
        ae = GatewayAE(s, self.service.config, self.service.store, sink=self, find=find, journal=journal)
        self.ae = ae
        self.indexer = Indexer(self.service, ae.active, loop, journal)
        await self.indexer.recover(leftover)
        async with self.service.db.pool.acquire() as conn:
            reclaimed = await route_queue.reap(conn)
        if reclaimed:
            log.info("route jobs resumed after a stop", extra={"jobs": reclaimed})
        self._listener = await self._listen()
        deidentifier = Deidentifier(s.deidentify_secret or self.secret)
        self.workers = [
            RouteWorker(self.service, deidentifier, self.wake, n + 1) for n in range(s.route_workers)
        ]
        self.tasks = [
            asyncio.create_task(self.indexer.run(), name="dicom-indexer"),
            asyncio.create_task(self.indexer.sweep(), name="dicom-sweep"),
            asyncio.create_task(self._reaper(), name="dicom-reaper"),
            *(asyncio.create_task(w.run(), name=f"dicom-route-{n}") for n, w in enumerate(self.workers)),
        ]
        self.port = ae.start()
        return self.port

    def put(self, item: Any) -> None:
        """The AE's sink: forwards to the indexer (thread-safe)."""
        assert self.indexer is not None
        self.indexer.put(item)

    async def _listen(self) -> asyncpg.Connection:
        """A pooled connection kept for LISTEN: a new job wakes the workers at once."""
        conn: asyncpg.Connection = await self.service.db.pool.acquire()
        await conn.add_listener(route_queue.CHANNEL, self._notified)
        return conn

    def _notified(self, *_: object) -> None:
        self.wake.set()

    async def _reaper(self) -> None:
        while True:
            await asyncio.sleep(max(self.settings.poll_seconds * 5, 5.0))
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                async with self.service.db.pool.acquire() as conn:
                    if await route_queue.reap(conn):
                        self.wake.set()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything handed to the indexer is indexed."""
        if self.indexer is not None:
            await asyncio.wait_for(self._drained(), timeout)

    async def _drained(self) -> None:
        assert self.indexer is not None
        while not (self.indexer.queue.empty() and self.indexer.idle.is_set()):
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.ae is not None:
            await asyncio.to_thread(self.ae.stop)
            self.ae = None
        with contextlib.suppress(TimeoutError):
            await self.drain(10.0)
        if self.indexer is not None and self.indexer.retiring:
            await asyncio.gather(*self.indexer.retiring, return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks = []
        for worker in self.workers:
            worker.close()
        if self._listener is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._listener.remove_listener(route_queue.CHANNEL, self._notified)
                await self.service.db.pool.release(self._listener)
            self._listener = None
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
        if self.journal is not None:
            self.journal.close()  # unapplied records (if any) are replayed at the next start
            self.journal = None


async def run_gateway(settings: Settings, dicom_settings: DicomSettings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set. ``settings.database_url`` must point at a running server."""
    from phix.app import create_app

    app = create_app(settings)
    app.state.role = "gateway"
    app.state.dicom_settings = dicom_settings
    async with app.router.lifespan_context(app):
        gateway = Gateway(app.state.dicom, settings.secret_key)
        port = await gateway.start()
        print(
            f"phix DICOM gateway: AE {dicom_settings.ae_title} on {dicom_settings.host}:{port}"
            f" ({len(gateway.service.config.institutions)} institutions,"
            f" {len(gateway.service.config.sites)} reading sites)",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await gateway.stop()
