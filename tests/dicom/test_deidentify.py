"""De-identification (PS3.15 basic profile subset): identity gone, UIDs consistent, idempotent."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from phix.dicom.deidentify import Deidentifier, NotDeidentifiable


def _ct() -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Chen^Wei=陈^伟"
    ds.PatientID = "MRN-7"
    ds.InstitutionName = "莆田市第一医院"
    ds.AccessionNumber = "A123"
    ds.OtherPatientIDs = "350302199001011234"
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds.ReferencedImageSequence = Sequence([ref])
    ds.add_new(0x00091001, "LO", "private vendor data")
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_basic_profile_subset() -> None:
    original = pydicom.dcmread(io.BytesIO(_ct()))
    deid = Deidentifier("secret")
    ds = pydicom.dcmread(io.BytesIO(deid.apply_bytes(_ct())))
    assert str(ds.PatientName).startswith("ANON^") and "陈" not in str(ds.PatientName)
    assert ds.PatientID.startswith("ANON-") and ds.PatientID != "MRN-7"
    assert ds.AccessionNumber != "A123" and ds.AccessionNumber
    for gone in ("InstitutionName", "OtherPatientIDs"):
        assert gone not in ds
    assert ds.PatientBirthDate == ""
    assert not any(e.tag.is_private for e in ds)
    assert ds.PatientIdentityRemoved == "YES"
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113106"]
    assert ds.StudyDate == original.StudyDate  # full dates retained
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        assert ds[keyword].value != original[keyword].value and ds[keyword].value.startswith("2.25.")
        assert len(ds[keyword].value) <= 64
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == deid.uid("1.2.3.4.5")
    assert ds.PixelData == original.PixelData


def test_pseudonyms_are_stable_and_keyed() -> None:
    a, b = Deidentifier("secret"), Deidentifier("other")
    once = pydicom.dcmread(io.BytesIO(a.apply_bytes(_ct())))
    again = pydicom.dcmread(io.BytesIO(a.apply_bytes(_ct())))
    other = pydicom.dcmread(io.BytesIO(b.apply_bytes(_ct())))
    assert once.SOPInstanceUID == again.SOPInstanceUID and once.PatientID == again.PatientID
    assert once.SOPInstanceUID != other.SOPInstanceUID and once.PatientID != other.PatientID


def test_burned_in_annotation_refused() -> None:
    ds = pydicom.dcmread(io.BytesIO(_ct()))
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(NotDeidentifiable):
        Deidentifier("secret").apply(ds)
    with pytest.raises(ValueError):
        Deidentifier("")
