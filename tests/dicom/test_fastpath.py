"""The hand-encoded C-STORE-RSP is byte for byte what pynetdicom would send."""

from __future__ import annotations

import pytest
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE

from phix.dicom.fastpath import FastStoreResponse


def _response(status: int, comment: str | None = None, offending: bool = False) -> C_STORE:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    rsp.AffectedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.123456789"
    rsp.Status = status
    if comment is not None:
        rsp.ErrorComment = comment
    if offending:
        rsp.OffendingElement = [0x00100010]
    return rsp


@pytest.mark.parametrize(
    ("status", "comment", "offending"),
    [
        (0x0000, None, False),
        (0xC000, "Corrupt data set: value of (7FE0,0010) runs 62 bytes past", False),
        (0xA700, "odd", False),
        (0x0124, "x" * 80, False),  # longer than LO allows: sent as is, like pynetdicom
        (0xA900, None, True),  # unusual field: pynetdicom's own encoder
    ],
)
@pytest.mark.parametrize("max_pdu", [0, 16384, 64])
def test_same_bytes_as_pynetdicom(status: int, comment: str | None, offending: bool, max_pdu: int) -> None:
    ours, theirs = FastStoreResponse(), C_STORE_RSP()
    ours.primitive_to_message(_response(status, comment, offending))
    theirs.primitive_to_message(_response(status, comment, offending))
    got = [p.presentation_data_value_list for p in ours.encode_msg(3, max_pdu)]
    want = [p.presentation_data_value_list for p in theirs.encode_msg(3, max_pdu)]
    assert got == want
