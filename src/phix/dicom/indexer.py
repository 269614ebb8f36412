"""The gateway's indexer: turns acknowledged files into index rows and completed studies.

The C-STORE handler (pynetdicom's threads) hands over :class:`Arrival` and
:class:`AssociationEnded` items through :meth:`Indexer.put`; the indexer works in batches on the
event loop (header parsing in a worker process). If the database is unavailable the files simply
stay in ``incoming/`` and are picked up by the next recovery pass; studies whose association
ended badly, or whose end was lost, are completed by :meth:`Indexer.sweep` once quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import asyncpg

from phix.dicom.scp import ActiveStudies, Arrival, AssociationEnded
from phix.dicom.service import DicomService
from phix.dicom.studies import quiet_studies

log = logging.getLogger(__name__)

BATCH = 256


class Indexer:
    def __init__(self, service: DicomService, active: ActiveStudies, loop: asyncio.AbstractEventLoop) -> None:
        self.service = service
        self.active = active
        self.loop = loop
        self.queue: asyncio.Queue[Arrival | AssociationEnded] = asyncio.Queue()
        self.idle = asyncio.Event()
        self.idle.set()
        self._recover_needed = False

    def put(self, item: Arrival | AssociationEnded) -> None:
        """Thread-safe (called from the association threads)."""
        self.loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item: Arrival | AssociationEnded) -> None:
        self.idle.clear()
        self.queue.put_nowait(item)

    async def recover(self) -> int:
        """Index whatever was acknowledged but not indexed before a crash."""
        store = self.service.store
        removed = await asyncio.to_thread(store.clean_tmp)
        keys = await asyncio.to_thread(store.pending)
        for start in range(0, len(keys), BATCH):
            await self.service.ingest([(k, None) for k in keys[start : start + BATCH]])
        if keys or removed:
            log.info("recovered", extra={"indexed": len(keys), "partial_files_removed": removed})
        self._recover_needed = False
        return len(keys)

    async def run(self) -> None:
        while True:
            item = await self.queue.get()
            batch = [item]
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.process(batch)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.error("indexing failed; files stay in incoming/", extra={"error": str(exc)})
                self._recover_needed = True
            except Exception:
                log.exception("indexing failed; files stay in incoming/")
                self._recover_needed = True
            if self.queue.empty():
                self.idle.set()

    async def process(self, batch: list[Arrival | AssociationEnded]) -> None:
        arrivals = [a for a in batch if isinstance(a, Arrival) and not a.duplicate]
        duplicates = [a for a in batch if isinstance(a, Arrival) and a.duplicate]
        unique = {a.key: a for a in arrivals}
        await self.service.ingest([(a.key, a.provenance) for a in unique.values()])
        if duplicates:
            await self.service.touch((a.study_instance_uid for a in duplicates), datetime.now(UTC))
        for ended in (e for e in batch if isinstance(e, AssociationEnded)):
            if not ended.released:
                continue  # completed by the sweep once quiet: the sender may retry
            sending = self.active.sending()
            await self.service.complete(s for s in ended.studies if s not in sending)

    async def sweep(self) -> None:
        """Complete quiet studies; re-run recovery after indexing failures."""
        interval = min(self.service.settings.stable_seconds / 2, 5.0)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if self._recover_needed:
                    await self.recover()
                async with self.service.db.pool.acquire() as conn:
                    quiet = await quiet_studies(
                        conn, self.service.settings.stable_seconds, self.active.sending()
                    )
                if quiet:
                    await self.service.complete(quiet)
