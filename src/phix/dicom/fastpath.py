"""pynetdicom tuning for the receive path, measured by bench/dicom.py (docs/dicom-conformance.md).

* **Reactor poll.** pynetdicom's association reactor polls with a hard-coded ``sleep(0.001)`` and
  its DUL reactor with ``_run_loop_delay = 0.001``: about 1 ms of latency per DIMSE message each
  way. :class:`TunedTime` replaces the association module's ``time`` with one whose 1 ms sleep is
  shorter; the DUL delay is set per association.
* **C-STORE-RSP encoding.** pynetdicom builds every response as a pydicom Dataset and encodes it
  twice (once for the group length): ~0.7 ms per instance, more than the durable write.
  :class:`FastStoreResponse` encodes the same bytes directly (implicit VR little endian, PS3.7
  9.3.1.2) for the usual fields and falls back to pynetdicom for anything else;
  ``tests/dicom/test_fastpath.py`` checks the bytes are identical to pynetdicom's.

:func:`install` / :func:`uninstall` apply and undo both (process-wide; the gateway calls them).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pynetdicom.association
import pynetdicom.dimse
from pydicom.dataset import Dataset
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE, DimsePrimitiveType
from pynetdicom.pdu_primitives import P_DATA


class TunedTime:
    """Stand-in for ``pynetdicom.association.time`` with a shorter reactor poll."""

    def __init__(self, real: ModuleType, delay: float) -> None:
        self._real = real
        self._delay = delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def sleep(self, seconds: float) -> None:
        self._real.sleep(self._delay if seconds == 0.001 else seconds)


def _element(tag: int, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    return struct.pack("<HHI", 0x0000, tag, len(value)) + value


def encode_store_response(
    message_id: int, sop_class: str | None, sop_instance: str | None, status: int, comment: str | None
) -> bytes:
    """The command set of a C-STORE-RSP, implicit VR little endian, group length first."""
    parts = []
    if sop_class:
        parts.append(_element(0x0002, sop_class.encode("ascii"), b"\x00"))
    parts.append(_element(0x0100, struct.pack("<H", 0x8001), b""))
    parts.append(_element(0x0120, struct.pack("<H", message_id), b""))
    parts.append(_element(0x0800, struct.pack("<H", 0x0101), b""))
    parts.append(_element(0x0900, struct.pack("<H", status), b""))
    if comment:
        parts.append(_element(0x0902, comment.encode("ascii", "replace"), b" "))
    if sop_instance:
        parts.append(_element(0x1000, sop_instance.encode("ascii"), b"\x00"))
    body = b"".join(parts)
    return _element(0x0000, struct.pack("<I", len(body)), b"") + body


class FastStoreResponse(C_STORE_RSP):
    """A C-STORE-RSP DIMSE message that encodes itself without pydicom (falls back if unusual)."""

    def __init__(self) -> None:  # skip building a command-set Dataset
        self.context_id: int | None = None
        self.data_set = None
        self._data_set_path = None
        self._data_set_file = None
        self._encoded: bytes | None = None
        self._fallback: C_STORE_RSP | None = None
        self.command_set = Dataset()  # only read by pynetdicom's logging handlers (disabled)

    def primitive_to_message(self, primitive: DimsePrimitiveType) -> None:
        assert isinstance(primitive, C_STORE)
        status = primitive.Status
        usual = (
            isinstance(status, int)
            and primitive.MessageIDBeingRespondedTo is not None
            and getattr(primitive, "OffendingElement", None) is None
            and getattr(primitive, "ErrorID", None) is None
        )
        if not usual:
            self._fallback = C_STORE_RSP()
            self._fallback.primitive_to_message(primitive)
            self.command_set = self._fallback.command_set
            return
        assert isinstance(status, int)
        self._encoded = encode_store_response(
            int(primitive.MessageIDBeingRespondedTo),  # type: ignore[arg-type]
            str(primitive.AffectedSOPClassUID) if primitive.AffectedSOPClassUID else None,
            str(primitive.AffectedSOPInstanceUID) if primitive.AffectedSOPInstanceUID else None,
            status,
            str(primitive.ErrorComment) if primitive.ErrorComment else None,
        )

    def encode_msg(self, context_id: int, max_pdu_length: int) -> Iterator[P_DATA]:
        if self._fallback is not None:
            yield from self._fallback.encode_msg(context_id, max_pdu_length)
            return
        assert self._encoded is not None
        self.context_id = context_id
        fragments = list(self._generate_pdv_fragments(self._encoded, max_pdu_length))
        for n, fragment in enumerate(fragments):
            pdata = P_DATA()
            header = b"\x03" if n == len(fragments) - 1 else b"\x01"
            pdata.presentation_data_value_list.append((context_id, header + fragment))
            yield pdata


_saved: dict[str, Any] = {}


def install(assoc_loop_delay: float, fast_store_response: bool) -> None:
    if _saved:
        return
    _saved["time"] = getattr(pynetdicom.association, "time")  # noqa: B009
    _saved["rsp"] = pynetdicom.dimse._RSP_TO_MESSAGE[C_STORE]
    if assoc_loop_delay != 0.001:
        setattr(pynetdicom.association, "time", TunedTime(_saved["time"], assoc_loop_delay))  # noqa: B010
    if fast_store_response:
        pynetdicom.dimse._RSP_TO_MESSAGE[C_STORE] = FastStoreResponse


def uninstall() -> None:
    if not _saved:
        return
    setattr(pynetdicom.association, "time", _saved.pop("time"))  # noqa: B010
    pynetdicom.dimse._RSP_TO_MESSAGE[C_STORE] = _saved.pop("rsp")
