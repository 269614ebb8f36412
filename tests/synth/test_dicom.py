"""DICOM files parse with pydicom and DCMTK and match the sending hospital's Patient record."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from phix.identity import systems

from .conftest import DataSet


def _studies(data: DataSet) -> dict[str, dict]:
    found = {}
    for _, bundle in data.bundles():
        for entry in bundle["entry"]:
            res = entry["resource"]
            if res["resourceType"] == "ImagingStudy":
                uid = next(i["value"] for i in res["identifier"] if i["system"] == systems.DICOM_UID)
                found[uid.removeprefix("urn:oid:")] = res
    return found


def test_dicom_matches_records(rich: DataSet) -> None:
    files = sorted((rich.root / "dicom").rglob("*.dcm"))
    assert len(files) == rich.manifest["counts"]["dicom_instances"] > 0
    studies = _studies(rich)
    records = {(r["institution"], r["mrn"]): r for r in rich.ground_truth()}
    modalities, charsets, sops = set(), set(), set()
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        institution = path.relative_to(rich.root / "dicom").parts[0]
        record = records[(institution, ds.PatientID)]
        assert ds.AccessionNumber == path.parent.parent.name
        study = studies[ds.StudyInstanceUID]
        assert any(i["value"] == ds.AccessionNumber for i in study["identifier"])
        assert ds.SOPInstanceUID in {i["uid"] for s in study["series"] for i in s["instance"]}
        assert ds.Modality == study["modality"][0]["code"]
        assert ds.PatientBirthDate == record["recorded_birth_date"].replace("-", "")
        name = str(ds.PatientName)
        if record["recorded_name"].isascii():
            assert "=" not in name
        else:
            ideographic = ds.PatientName.ideographic.replace("^", "")
            assert ideographic == record["recorded_name"]
        modalities.add(ds.Modality)
        charsets.add(ds.SpecificCharacterSet)
        sops.add(ds.SOPClassUID)
        assert len(ds.PixelData) == ds.Rows * ds.Columns * ds.BitsAllocated // 8
    assert modalities == {"CT", "MR", "DX", "US"}
    assert charsets == {"ISO_IR 192", "GB18030"}
    assert len(sops) == 4


@pytest.mark.skipif(
    shutil.which("dcmdump") is None, reason="DCMTK (dcmdump) not installed: apt-get install dcmtk"
)
def test_dcmdump_reads_every_file(rich: DataSet) -> None:
    files = [str(p) for p in sorted((rich.root / "dicom").rglob("*.dcm"))]
    for start in range(0, len(files), 50):
        batch = files[start : start + 50]
        # dcmdump prints values in their own character set (GB18030 too): read bytes.
        result = subprocess.run(["dcmdump", "-q", *batch], capture_output=True, check=False)
        stderr = result.stderr.decode("utf-8", "replace")
        assert result.returncode == 0, stderr
        assert "E:" not in stderr and "W:" not in stderr, stderr
        assert result.stdout.count(b"(0010,0020)") >= len(batch)


def test_sample_dicom_files_parse(sample: DataSet) -> None:
    files = sorted(Path(sample.root / "dicom").rglob("*.dcm"))
    assert files
    for path in files:
        assert pydicom.dcmread(path).PatientID
