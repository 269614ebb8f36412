"""The gateway's Application Entity (pynetdicom): association policy and the DIMSE handlers.

Association (PS3.8): the called AE title must be ours; the calling AE title must belong to a
configured institution (or be a monitoring title, C-ECHO only); anything else is rejected with
A-ASSOCIATE-RJ (permanent, service user, "calling AE title not recognized").

Handlers (each runs in the association's thread):

``C-ECHO`` (PS3.4 A.4, Verification)
    0x0000 Success.
``C-STORE`` (PS3.4 B.2.3, all storage SOP classes)
    The encoded data set is walked without decoding (:func:`phix.dicom.encoding.scan`) and,
    with its file meta, appended to the receive journal and ``fdatasync``'ed
    (:mod:`phix.dicom.journal`; without a journal: written to ``tmp/``, fsynced, renamed into
    ``incoming/`` and the directory fsynced) -- only then is success answered. The
    content-addressed file (keyed by SOP Instance UID) and the index are written later, off this
    thread. Statuses: 0x0000 Success (also for an instance already stored: a
    duplicate is idempotent); 0x0124 Refused, not authorized (monitoring AE titles);
    0xA700 Refused, out of resources (the write failed); 0xA900 Error, data set does not match
    SOP class; 0xC000 Error, cannot understand (corrupt or truncated data set, or its SOP Instance
    UID differs from the request's) -- nothing is stored for a failure.
``C-FIND`` (PS3.4 C.4.1, Patient Root and Study Root information models, FIND)
    Levels PATIENT (patient root only), STUDY, SERIES and IMAGE; matching as in
    :mod:`phix.dicom.query`. Statuses: 0xFF00 Pending per match, then 0x0000 Success;
    0xFE00 Cancel; 0xA900 Identifier does not match SOP class (missing or invalid
    QueryRetrieveLevel); 0xC000 Unable to process (unsupported matching, index unavailable);
    0x0124 Refused, not authorized (monitoring AE titles).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.dimse_primitives import C_FIND, C_STORE
from pynetdicom.events import Event

from phix.dicom import fastpath
from phix.dicom.config import DicomSettings
from phix.dicom.encoding import CorruptDataset, file_meta, scan
from phix.dicom.index import Provenance
from phix.dicom.journal import Journal, Location
from phix.dicom.routing import RoutingConfig
from phix.dicom.store import InstanceStore, key_of

log = logging.getLogger(__name__)

# Transfer syntaxes accepted for storage (PS3.5 Annex A): uncompressed, deflated, JPEG, JPEG-LS,
# JPEG 2000, HTJ2K, RLE, and MPEG-2/MPEG-4/HEVC video. Stored and served as received.
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
    "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
    "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108",
]  # fmt: skip
UNCOMPRESSED = TRANSFER_SYNTAXES[:4]
VERIFICATION = "1.2.840.10008.1.1"
FIND_MODELS = {
    "1.2.840.10008.5.1.4.1.2.1.1": ("PATIENT", "STUDY", "SERIES", "IMAGE"),  # Patient Root FIND
    "1.2.840.10008.5.1.4.1.2.2.1": ("STUDY", "SERIES", "IMAGE"),  # Study Root FIND
}

SUCCESS = 0x0000
NOT_AUTHORIZED = 0x0124
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
PENDING = 0xFF00
CANCEL = 0xFE00


@dataclass(frozen=True, slots=True)
class Arrival:
    """An instance made durable (or found already stored: ``duplicate``)."""

    key: str
    study_instance_uid: str
    provenance: Provenance
    association: int
    duplicate: bool = False
    location: Location | None = None  # in the receive journal (None: written to incoming/)


@dataclass(frozen=True, slots=True)
class AssociationEnded:
    association: int
    studies: frozenset[str]
    released: bool  # False: aborted or dropped (the studies complete after a quiet period)


class Sink(Protocol):
    def put(self, item: Arrival | AssociationEnded) -> None:
        """Thread-safe hand-off to the indexer."""


FindFn = Callable[[str, Dataset], list[Dataset]]  # (level, identifier) -> matches; blocking


class QueryFailed(Exception):
    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


def _status(code: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    return ds


class ActiveStudies:
    """Which studies each open association has sent (a study is complete when none is sending)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_assoc: dict[int, set[str]] = {}

    def add(self, assoc: int, study: str) -> None:
        with self._lock:
            self._by_assoc.setdefault(assoc, set()).add(study)

    def end(self, assoc: int) -> frozenset[str]:
        with self._lock:
            return frozenset(self._by_assoc.pop(assoc, set()))

    def streaming(self) -> bool:
        """Is any association sending instances right now?"""
        return bool(self._by_assoc)

    def sending(self) -> set[str]:
        with self._lock:
            return set().union(*self._by_assoc.values()) if self._by_assoc else set()


class GatewayAE:
    def __init__(
        self,
        settings: DicomSettings,
        config: RoutingConfig,
        store: InstanceStore,
        sink: Sink,
        find: FindFn | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.sink = sink
        self.find = find
        self.journal = journal
        self.active = ActiveStudies()
        self._server: Any = None
        self._ids = iter(range(1, 1 << 62))
        self._assoc_ids: dict[int, int] = {}
        self.monitors = set(settings.monitor_ae_titles)

    # -- lifecycle ---------------------------------------------------------------------------------

    def build(self) -> AE:
        ae = AE(ae_title=self.settings.ae_title)
        ae.maximum_pdu_size = 0  # no limit: the sender chooses its fragment size
        ae.maximum_associations = self.settings.max_associations
        ae.network_timeout = self.settings.network_timeout
        ae.require_called_aet = True
        ae.require_calling_aet = [*self.config.ae_titles, *self.monitors]
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
        ae.add_supported_context(VERIFICATION, UNCOMPRESSED)
        for model in FIND_MODELS:
            ae.add_supported_context(model, UNCOMPRESSED)
        return ae

    def start(self) -> int:
        """Listen (in pynetdicom's threads); returns the bound port."""
        if not self.config.ae_titles:
            log.warning("no institution AE titles configured: every C-STORE will be rejected")
        self._tune()
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, self._on_open),
            (evt.EVT_CONN_CLOSE, self._on_close),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
        ]
        address = (self.settings.host, self.settings.port)
        self._server = self.build().start_server(address, block=False, evt_handlers=handlers)
        port: int = self._server.server_address[1]
        log.info("DICOM listener started", extra={"ae_title": self.settings.ae_title, "port": port})
        return port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        fastpath.uninstall()

    def _tune(self) -> None:
        """pynetdicom tuning (phix.dicom.fastpath) and no per-message INFO logging from pynetdicom
        (our handlers log what matters)."""
        _config.LOG_HANDLER_LEVEL = "none"
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        fastpath.install(self.settings.assoc_loop_delay, self.settings.fast_store_response)

    # -- handlers ----------------------------------------------------------------------------------

    def _assoc_id(self, event: Event) -> int:
        return self._assoc_ids.setdefault(id(event.assoc), next(self._ids))

    def _on_open(self, event: Event) -> None:
        dul = event.assoc.dul
        dul._run_loop_delay = self.settings.dul_loop_delay
        if self.settings.tcp_nodelay and dul.socket is not None and dul.socket.socket is not None:
            dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_close(self, event: Event) -> None:
        number = self._assoc_ids.pop(id(event.assoc), None)
        if number is None:
            return
        studies = self.active.end(number)
        if studies:
            self.sink.put(AssociationEnded(number, studies, bool(event.assoc.is_released)))

    def _on_echo(self, event: Event) -> int:
        return SUCCESS

    def _on_store(self, event: Event) -> int | Dataset:
        calling = event.assoc.requestor.ae_title.strip()
        institution = self.config.institution_by_ae(calling)
        if institution is None:
            return _status(NOT_AUTHORIZED, f"AE title {calling} may not store")
        request = cast(C_STORE, event.request)
        sop_uid = str(request.AffectedSOPInstanceUID)
        sop_class = str(request.AffectedSOPClassUID)
        syntax = str(event.context.transfer_syntax)
        raw = event.encoded_dataset(include_meta=False)
        try:
            scanned = scan(raw, syntax)
        except CorruptDataset as exc:
            log.warning("corrupt data set refused", extra={"sop": sop_uid, "ae": calling, "error": str(exc)})
            return _status(CANNOT_UNDERSTAND, f"Corrupt data set: {exc}")
        if scanned.sop_instance_uid != sop_uid:
            return _status(CANNOT_UNDERSTAND, "SOP Instance UID differs from the request")
        if scanned.sop_class_uid and scanned.sop_class_uid != sop_class:
            return _status(DOES_NOT_MATCH, "SOP Class UID differs from the request")
        key = key_of(sop_uid)
        parts = (file_meta(sop_class, sop_uid, syntax, calling), raw)
        location = None
        try:
            if self.journal is None:
                created = self.store.write_incoming(key, parts)
            else:
                created = not (key in self.journal.inflight or self.store.exists(key))
                if created:
                    location = self.journal.append(key, parts)
        except OSError as exc:
            log.error("instance write failed", extra={"sop": sop_uid, "error": str(exc)})
            return _status(OUT_OF_RESOURCES, "Cannot store the instance")
        number = self._assoc_id(event)
        self.active.add(number, scanned.study_instance_uid)
        prov = Provenance(calling, institution.code, datetime.now(UTC))
        self.sink.put(Arrival(key, scanned.study_instance_uid, prov, number, not created, location))
        return SUCCESS

    def _on_find(self, event: Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        calling = event.assoc.requestor.ae_title.strip()
        if calling in self.monitors and self.config.institution_by_ae(calling) is None:
            yield NOT_AUTHORIZED, None
            return
        model = str(cast(C_FIND, event.request).AffectedSOPClassUID)
        try:
            identifier = event.identifier
            level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
        except Exception as exc:  # undecodable identifier
            log.warning("C-FIND identifier not decodable", extra={"error": str(exc)})
            yield DOES_NOT_MATCH, None
            return
        if level not in FIND_MODELS.get(model, ()):
            yield _status(DOES_NOT_MATCH, f"Query level {level or '(none)'} not valid here"), None
            return
        if self.find is None:
            yield _status(CANNOT_UNDERSTAND, "Query service not available"), None
            return
        started = time.perf_counter()
        try:
            matches = self.find(level, identifier)
        except QueryFailed as exc:
            yield _status(exc.status, exc.comment), None
            return
        for match in matches:
            if event.is_cancelled:
                yield CANCEL, None
                return
            yield PENDING, match
        log.info(
            "C-FIND answered",
            extra={
                "level": level,
                "matches": len(matches),
                "ms": round((time.perf_counter() - started) * 1e3),
            },
        )
