"""Route workers: claim a job, send what the destination lacks, record progress, finish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

import asyncpg

from phix.dicom import queue as route_queue
from phix.dicom.deidentify import Deidentifier, NotDeidentifiable
from phix.dicom.orthanc import DeliveryError, Loader, Outgoing, Transport, transport_for
from phix.dicom.service import DicomService
from phix.dicom.store import key_of

log = logging.getLogger(__name__)

CHUNK = 50  # instances per transport call: progress is recorded after each chunk


class RouteWorker:
    def __init__(
        self,
        service: DicomService,
        deidentifier: Deidentifier,
        wake: asyncio.Event,
        number: int = 1,
        transports: Callable[[str], Transport] | None = None,
    ) -> None:
        self.service = service
        self.settings = service.settings
        self.deidentifier = deidentifier
        self.wake = wake
        self.name = f"{socket.gethostname()}:{os.getpid()}:w{number}"
        self._transports = transports or self._default_transport
        self._cache: dict[str, Transport] = {}

    def _default_transport(self, destination: str) -> Transport:
        site = self.service.config.site(destination)
        if site is None:
            raise DeliveryError(f"destination {destination!r} is not in the routing configuration")
        s = self.settings
        return transport_for(site, s.ae_title, s.upload_concurrency, s.delivery_timeout)

    def transport(self, destination: str) -> Transport:
        if destination not in self._cache:
            self._cache[destination] = self._transports(destination)
        return self._cache[destination]

    async def run(self) -> None:
        while True:
            try:
                worked = await self.run_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("route worker: database unavailable", extra={"error": str(exc)})
                worked = False
            except Exception:  # a bug must not stop routing; the reaper re-queues the job
                log.exception("route worker error")
                worked = False
            if not worked:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.settings.poll_seconds)

    async def run_once(self) -> bool:
        """Deliver one due job, if any. True when a job was processed."""
        async with self.service.db.pool.acquire() as conn:
            job = await route_queue.claim(conn, self.name)
            if job is None:
                return False
            try:
                await self._deliver(conn, job)
            finally:
                await route_queue.release(conn, job)
        return True

    def _loader(self, job: route_queue.Job) -> Loader | None:
        if not job.deidentify:
            return None
        deid = self.deidentifier

        def load(item: Outgoing) -> bytes:
            return deid.apply_bytes(item.path.read_bytes())

        return load

    async def _deliver(self, conn: asyncpg.Connection, job: route_queue.Job) -> None:
        s = self.settings
        store = self.service.store
        log.info(
            "delivering",
            extra={"route": job.id, "study": job.study_instance_uid, "destination": job.destination},
        )
        try:
            pending = await route_queue.undelivered(conn, job)
            transport = self.transport(job.destination)
            load = self._loader(job)
            for start in range(0, len(pending), CHUNK):
                chunk = []
                for item in pending[start : start + CHUNK]:
                    path = store.locate(item.path, key_of(item.sop_instance_uid))
                    if path is None:
                        raise DeliveryError(f"instance {item.sop_instance_uid} is missing from the store")
                    chunk.append(
                        Outgoing(item.sop_instance_uid, item.sop_class_uid, item.transfer_syntax_uid, path)
                    )
                sent = await asyncio.to_thread(transport.send, chunk, load)
                await route_queue.record_delivered(conn, job, sent.delivered)
                if sent.error:
                    raise DeliveryError(sent.error)
        except (DeliveryError, NotDeidentifiable, OSError) as exc:
            status = await route_queue.finish_failed(
                conn,
                job,
                str(exc),
                base=s.retry_base_seconds,
                cap=s.retry_max_seconds,
                max_attempts=s.max_attempts,
            )
            self._cache.pop(job.destination, None)
            log.warning(
                "delivery failed",
                extra={"route": job.id, "destination": job.destination, "error": str(exc), "status": status},
            )
            return
        status = await route_queue.finish_ok(conn, job)
        log.info(
            "delivered",
            extra={
                "route": job.id,
                "destination": job.destination,
                "instances": len(pending),
                "status": status,
            },
        )
        if status == "pending":
            self.wake.set()

    def close(self) -> None:
        for transport in self._cache.values():
            transport.close()
        self._cache.clear()
