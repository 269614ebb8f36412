"""The DICOM domain's shared service: index received files, complete studies.

Used by the gateway's indexer (instances from C-STORE) and by STOW-RS in the API process; both
write to the same store directory and database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from phix.dicom import index
from phix.dicom.config import DicomSettings
from phix.dicom.header import InstanceRecord, read_headers
from phix.dicom.index import Provenance
from phix.dicom.routing import RoutingConfig
from phix.dicom.store import InstanceStore
from phix.dicom.studies import Completed, FhirWiring, complete_study
from phix.storage.database import Database

log = logging.getLogger(__name__)


@dataclass
class Ingested:
    records: list[InstanceRecord] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # key -> why the file is unreadable

    @property
    def studies(self) -> list[str]:
        return list(dict.fromkeys(r.study_instance_uid for r in self.records))


class DicomService:
    def __init__(
        self,
        settings: DicomSettings,
        config: RoutingConfig,
        store: InstanceStore,
        db: Database,
        wiring: FhirWiring,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.db = db
        self.wiring = wiring
        self.executor = executor

    def _provenance(self, record: InstanceRecord) -> Provenance:
        """For files recovered after a crash: the calling AE title is in the file meta."""
        institution = self.config.institution_by_ae(record.source_ae) if record.source_ae else None
        moment = datetime.fromtimestamp(record.mtime or 0, UTC)
        return Provenance(record.source_ae, institution.code if institution else None, moment)

    async def ingest(
        self, arrivals: Sequence[tuple[str, Provenance | None]], *, incoming: bool = True
    ) -> Ingested:
        """Index files (key, provenance or None to read it from the file) waiting in incoming/
        (moved to objects/ once indexed) or, ``incoming=False``, already in objects/."""
        result = Ingested()
        if not arrivals:
            return result
        place = self.store.incoming_path if incoming else self.store.object_path
        work = [(str(place(key)), key) for key, _ in arrivals]
        loop = asyncio.get_running_loop()
        if self.executor is None:
            parsed = await asyncio.to_thread(read_headers, work)
        else:
            parsed = await loop.run_in_executor(self.executor, read_headers, work)
        entries = []
        for (key, prov), outcome in zip(arrivals, parsed, strict=True):
            if isinstance(outcome, str):
                if not place(key).exists():
                    continue  # indexed meanwhile by another pass (recovery racing the live indexer)
                result.failures[key] = outcome
                where = self.store.set_aside(key) if incoming else self.store.set_aside_object(key)
                log.error("unreadable instance quarantined", extra={"error": outcome, "path": str(where)})
                continue
            result.records.append(outcome)
            entries.append((outcome, self.store.relative_object_path(key), prov or self._provenance(outcome)))
        async with self.db.pool.acquire() as conn:
            await index.insert(conn, entries)
        if incoming:
            keys = [record.key for record in result.records]
            await asyncio.to_thread(self._promote, keys)
        return result

    def _promote(self, keys: list[str]) -> None:
        for key in keys:
            self.store.promote(key)

    async def touch(self, study_uids: Iterable[str], moment: datetime) -> None:
        uids = list(dict.fromkeys(study_uids))
        if uids:
            async with self.db.pool.acquire() as conn:
                await index.touch(conn, uids, moment)

    async def complete(self, study_uids: Iterable[str]) -> list[Completed]:
        done = []
        for uid in dict.fromkeys(study_uids):
            async with self.db.pool.acquire() as conn:
                completed = await complete_study(conn, uid, self.config, self.wiring)
            if completed is not None:
                done.append(completed)
                log.info(
                    "study complete",
                    extra={
                        "study": uid,
                        "imaging_study": completed.imaging_study_id,
                        "subject": completed.subject,
                        "destinations": [r.destination for r in completed.routes],
                    },
                )
        return done
