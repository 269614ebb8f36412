"""The receive path's byte-level checks: every pydicom sample walks, broken data sets do not."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.data import get_charset_files, get_testdata_file

from phix.dicom.encoding import CorruptDataset, file_meta, scan, split_part10

CT = Path(get_testdata_file("CT_small.dcm", download=False) or "")


def _samples() -> list[Path]:
    folder = CT.parent
    files = sorted(folder.glob("*.dcm")) + [Path(p) for p in get_charset_files("chr*.dcm")]
    usable = []
    for path in files:
        raw = path.read_bytes()
        if raw[128:132] != b"DICM":
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.get("SOPInstanceUID") and ds.get("StudyInstanceUID") and ds.get("SeriesInstanceUID"):
            usable.append(path)
    return usable


SAMPLES = _samples()
BROKEN = {"MR_truncated.dcm", "rtplan_truncated.dcm", "SC_rgb_jpeg.dcm"}  # truncated / meta lies


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_pydicom_sample_walks(path: Path) -> None:
    part = split_part10(path.read_bytes())
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    if path.name in BROKEN:
        with pytest.raises(CorruptDataset):
            scan(part.dataset, part.transfer_syntax_uid)
        return
    scanned = scan(part.dataset, part.transfer_syntax_uid)
    assert scanned.sop_instance_uid == ds.SOPInstanceUID
    assert scanned.study_instance_uid == ds.StudyInstanceUID
    assert scanned.series_instance_uid == ds.SeriesInstanceUID


def test_samples_cover_the_encodings() -> None:
    syntaxes = {split_part10(p.read_bytes()).transfer_syntax_uid for p in SAMPLES}
    assert {
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.1.99",
    } <= syntaxes
    assert any(s.startswith("1.2.840.10008.1.2.4.") for s in syntaxes)  # encapsulated pixel data


def test_truncation_anywhere_is_detected() -> None:
    data = split_part10(CT.read_bytes()).dataset
    for cut in range(2, len(data), 997):
        with pytest.raises(CorruptDataset):
            scan(data[:cut], "1.2.840.10008.1.2.1")


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=2000))
def test_arbitrary_bytes_never_crash(blob: bytes) -> None:
    for syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"):
        with contextlib.suppress(CorruptDataset):
            scan(blob, syntax)


def test_missing_uids_are_refused() -> None:
    ds = pydicom.dcmread(CT)
    del ds.StudyInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(CorruptDataset, match="missing Study Instance UID"):
        scan(split_part10(buffer.getvalue()).dataset, "1.2.840.10008.1.2.1")


def test_file_meta_is_valid_part10() -> None:
    part = split_part10(CT.read_bytes())
    meta = file_meta("1.2.840.10008.5.1.4.1.1.2", part.sop_instance_uid, part.transfer_syntax_uid, "XYX_CT")
    ds = pydicom.dcmread(io.BytesIO(meta + part.dataset))
    assert ds.file_meta.MediaStorageSOPInstanceUID == part.sop_instance_uid
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.file_meta.SourceApplicationEntityTitle == "XYX_CT"
    assert ds.file_meta.FileMetaInformationGroupLength == len(meta) - 144
    assert ds.PixelData == pydicom.dcmread(CT).PixelData


def test_split_part10_refuses_non_dicom() -> None:
    with pytest.raises(CorruptDataset, match="no DICM prefix"):
        split_part10(os.urandom(300))
