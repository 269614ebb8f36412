"""Delivery to reading sites (Orthanc nodes): REST upload or C-STORE. Both are idempotent by SOP
Instance UID at the site (Orthanc answers ``AlreadyStored`` / keeps the first copy), and the
queue only sends what ``dicom_deliveries`` says the site does not have yet.

Transports are blocking (``orthanc-api-client`` uses requests, pynetdicom uses threads); the
route worker runs them in a thread, one chunk of instances at a time.
"""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pydicom
from orthanc_api_client import OrthancApiClient
from orthanc_api_client import exceptions as orthanc_errors
from pydicom.dataset import Dataset
from pynetdicom import AE, _config, evt
from pynetdicom.events import Event

from phix.dicom.routing import Site

log = logging.getLogger(__name__)

_STORE_OK = {0x0000, 0xB000, 0xB006, 0xB007}  # success and the C-STORE warnings


class DeliveryError(Exception):
    """The site could not take the instances now (down, refused, timed out): retry later."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    path: Path


Loader = Callable[[Outgoing], bytes]  # the bytes to send (de-identified when the route says so)


@dataclass
class Sent:
    delivered: list[str]
    already_there: int = 0
    error: str | None = None


class Transport(Protocol):
    def send(self, items: Sequence[Outgoing], load: Loader | None) -> Sent: ...

    def close(self) -> None: ...


class OrthancRest:
    """``POST /instances`` through orthanc-api-client, a few uploads in parallel."""

    def __init__(self, site: Site, concurrency: int, timeout: float) -> None:
        assert site.url is not None
        self.site = site
        self.timeout = timeout
        self.concurrency = concurrency
        self.client = OrthancApiClient(
            site.url, user=site.username, pwd=site.password, pool_maxsize=max(concurrency, 2)
        )

    def _upload(self, item: Outgoing, load: Loader | None) -> str:
        data = load(item) if load else item.path.read_bytes()
        response = self.client.post("instances", data=data, timeout=self.timeout)
        status = str(response.json().get("Status", ""))
        if status not in ("Success", "AlreadyStored"):
            raise DeliveryError(f"{self.site.name}: Orthanc answered {status or 'no status'}")
        return status

    def send(self, items: Sequence[Outgoing], load: Loader | None) -> Sent:
        sent = Sent([])
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"site-{self.site.name}") as pool:
            futures = {pool.submit(self._upload, item, load): item for item in items}
            for future in as_completed(futures):
                item = futures[future]
                try:
                    status = future.result()
                except (orthanc_errors.OrthancApiException, DeliveryError, OSError) as exc:
                    sent.error = sent.error or _describe(self.site, exc)
                    for other in futures:
                        other.cancel()
                    continue
                sent.delivered.append(item.sop_instance_uid)
                sent.already_there += status == "AlreadyStored"
        return sent

    def close(self) -> None:
        self.client.close()


def _describe(site: Site, exc: BaseException) -> str:
    if isinstance(exc, orthanc_errors.ConnectionError):
        return f"{site.name}: cannot connect to {site.url}"
    if isinstance(exc, orthanc_errors.HttpError):
        return f"{site.name}: HTTP {exc.http_status_code} {exc.msg or ''}".strip()
    return f"{site.name}: {type(exc).__name__}: {exc}"


def _nodelay(event: Event) -> None:
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class CStore:
    """One association per chunk; raw files sent without decoding when the site accepts their
    transfer syntax, otherwise decoded and converted (uncompressed only)."""

    def __init__(self, site: Site, calling_ae: str, timeout: float) -> None:
        self.site = site
        self.calling_ae = calling_ae
        self.timeout = timeout

    def send(self, items: Sequence[Outgoing], load: Loader | None) -> Sent:
        assert self.site.host and self.site.port and self.site.ae_title
        _config.STORE_SEND_CHUNKED_DATASET = True  # send files as stored (exact context required)
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        pairs = sorted({(i.sop_class_uid, i.transfer_syntax_uid) for i in items})
        classes = sorted({c for c, _ in pairs})
        if len(pairs) + len(classes) > 128:
            raise DeliveryError(f"{self.site.name}: too many SOP class / syntax pairs in one chunk")
        for sop_class, syntax in pairs:
            ae.add_requested_context(sop_class, [syntax])
        for sop_class in classes:
            ae.add_requested_context(sop_class, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
        assoc = ae.associate(
            self.site.host,
            self.site.port,
            ae_title=self.site.ae_title,
            evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)],
        )
        if not assoc.is_established:
            raise DeliveryError(f"{self.site.name}: association to {self.site.host}:{self.site.port} failed")
        accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
        sent = Sent([])
        try:
            for item in items:
                payload: Path | Dataset
                if load is not None:
                    payload = pydicom.dcmread(io.BytesIO(load(item)))
                elif (item.sop_class_uid, item.transfer_syntax_uid) in accepted:
                    payload = item.path
                else:
                    payload = pydicom.dcmread(item.path)
                status = assoc.send_c_store(payload)
                code = int(status.get("Status", -1)) if status else -1
                if code not in _STORE_OK:
                    sent.error = (
                        f"{self.site.name}: C-STORE status 0x{code & 0xFFFF:04X}"
                        if code >= 0
                        else (f"{self.site.name}: no C-STORE response (connection lost)")
                    )
                    break
                sent.delivered.append(item.sop_instance_uid)
        except (OSError, RuntimeError, ValueError, AttributeError) as exc:
            sent.error = f"{self.site.name}: {type(exc).__name__}: {exc}"
        finally:
            if assoc.is_established:
                assoc.release()
        return sent

    def close(self) -> None:
        return None


def transport_for(site: Site, calling_ae: str, concurrency: int, timeout: float) -> Transport:
    if site.transport == "orthanc-rest":
        return OrthancRest(site, concurrency, timeout)
    return CStore(site, calling_ae, timeout)
