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
import time
from datetime import UTC, datetime

import asyncpg

from phix.dicom.journal import Journal, Location
from phix.dicom.scp import ActiveStudies, Arrival, AssociationEnded
from phix.dicom.service import DicomService
from phix.dicom.studies import quiet_studies

log = logging.getLogger(__name__)

BATCH = 256


class Indexer:
    def __init__(
        self,
        service: DicomService,
        active: ActiveStudies,
        loop: asyncio.AbstractEventLoop,
        journal: Journal | None = None,
    ) -> None:
        self.service = service
        self.active = active
        self.loop = loop
        self.journal = journal
        self.queue: asyncio.Queue[Arrival | AssociationEnded] = asyncio.Queue()
        self.idle = asyncio.Event()
        self.idle.set()
        self._recover_needed = False
        self.retiring: set[asyncio.Task[None]] = set()  # journal segments being retired

    def put(self, item: Arrival | AssociationEnded) -> None:
        """Thread-safe (called from the association threads)."""
        self.loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item: Arrival | AssociationEnded) -> None:
        self.idle.clear()
        self.queue.put_nowait(item)

    async def recover(self, segments: list[int] | None = None) -> int:
        """Index whatever was acknowledged but not indexed before a crash: files left in
        incoming/ (STOW-RS, journal-less receiving) and the journal segments of the last run."""
        store = self.service.store
        removed = await asyncio.to_thread(store.clean_tmp)
        keys = await asyncio.to_thread(store.pending)
        for start in range(0, len(keys), BATCH):
            await self.service.ingest([(k, None) for k in keys[start : start + BATCH]])
        replayed = 0
        if self.journal is not None:
            for sequence in segments or []:
                replayed += await self._replay(self.journal, sequence)
        if keys or removed or replayed:
            log.info(
                "recovered",
                extra={"indexed": len(keys), "replayed": replayed, "partial_files_removed": removed},
            )
        self._recover_needed = False
        return len(keys) + replayed

    async def _replay(self, journal: Journal, sequence: int) -> int:
        records = await asyncio.to_thread(lambda: list(journal.replay(sequence)))
        for start in range(0, len(records), BATCH):
            chunk = records[start : start + BATCH]
            await asyncio.to_thread(self._materialize, [(r.key, r.location) for r in chunk])
            await self.service.ingest([(r.key, None) for r in chunk], incoming=False)
        journal.seal_recovered(sequence, len(records))
        await asyncio.to_thread(journal.retire, sequence, self.service.store.objects)
        return len(records)

    def _materialize(self, items: list[tuple[str, Location]]) -> None:
        assert self.journal is not None
        store = self.service.store
        for key, location in items:
            if not store.object_path(key).exists():
                store.materialize(key, self.journal.read(location))

    async def _receive_first(self) -> None:
        """While associations are streaming, leave the CPU to them (2 cores: indexing alongside
        costs ~45% of receive throughput, bench/dicom.py): index when they end, when the backlog
        reaches ``index_defer_backlog`` or when the oldest waits ``index_defer_seconds``."""
        settings = self.service.settings
        deadline = time.monotonic() + settings.index_defer_seconds
        while (
            self.active.streaming()
            and self.queue.qsize() < settings.index_defer_backlog
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        while True:
            item = await self.queue.get()
            if isinstance(item, Arrival):
                await self._receive_first()
            batch = [item]
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.process(batch)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.error("indexing failed; retrying in 2 s", extra={"error": str(exc)})
                self._retry_later(batch)
            except Exception:
                log.exception("indexing failed; retrying in 2 s")
                self._retry_later(batch)
            if self.queue.empty():
                self.idle.set()

    def _retry_later(self, batch: list[Arrival | AssociationEnded]) -> None:
        self._recover_needed = True  # files of journal-less arrivals are rescanned from incoming/
        journaled = [i for i in batch if not isinstance(i, Arrival) or i.location is not None]
        self.idle.clear()
        self.loop.call_later(2.0, self._enqueue_all, journaled)

    def _enqueue_all(self, items: list[Arrival | AssociationEnded]) -> None:
        for item in items:
            self._enqueue(item)

    async def process(self, batch: list[Arrival | AssociationEnded]) -> None:
        arrivals = [a for a in batch if isinstance(a, Arrival) and not a.duplicate]
        duplicates = [a for a in batch if isinstance(a, Arrival) and a.duplicate]
        unique = {a.key: a for a in arrivals}
        journaled = [a for a in unique.values() if a.location is not None]
        if journaled:
            await asyncio.to_thread(self._materialize, [(a.key, a.location) for a in journaled if a.location])
            await self.service.ingest([(a.key, a.provenance) for a in journaled], incoming=False)
        files = [a for a in unique.values() if a.location is None]
        await self.service.ingest([(a.key, a.provenance) for a in files])
        if self.journal is not None:
            ready: set[int] = set()
            for a in journaled:
                assert a.location is not None
                ready.update(self.journal.applied(a.key, a.location))
            for sequence in ready:
                self._retire(self.journal, sequence)
        if duplicates:
            await self.service.touch((a.study_instance_uid for a in duplicates), datetime.now(UTC))
        for ended in (e for e in batch if isinstance(e, AssociationEnded)):
            if not ended.released:
                continue  # completed by the sweep once quiet: the sender may retry
            sending = self.active.sending()
            await self.service.complete(s for s in ended.studies if s not in sending)

    def _retire(self, journal: Journal, sequence: int) -> None:
        task = asyncio.create_task(asyncio.to_thread(journal.retire, sequence, self.service.store.objects))
        self.retiring.add(task)
        task.add_done_callback(self.retiring.discard)

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
