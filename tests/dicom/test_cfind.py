"""C-FIND from DCMTK findscu: patient, study and series levels, Chinese names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest


@pytest.fixture
def rules(tmp_path: Path, kit: Any) -> Path:
    no_rules = kit.ROUTING.split("rules:")[0]  # institutions and sites, nothing routed
    return kit.write_routing(tmp_path / "routing.yaml", kit.free_port(), kit.free_port(), text=no_rules)


async def findscu(kit: Any, port: int, out: Path, model: str, *keys: str) -> list[pydicom.Dataset]:
    out.mkdir(parents=True, exist_ok=True)
    args = ["findscu", model, "-X", "-od", str(out), "-aet", "XTW_DX", "-aec", "PHIX"]
    for key in keys:
        args += ["-k", key]
    code, log = await kit.dcmtk(*args, "127.0.0.1", str(port))
    assert code == 0, log
    found = [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]
    for p in out.glob("rsp*.dcm"):
        p.unlink()
    return found


async def test_find_patient_study_series(start_gateway: Any, rules: Path, kit: Any, tmp_path: Path) -> None:
    a = kit.make_study(tmp_path / "a", 3, patient_id="P-1", patient_name="Chen^Wei=陈^伟", series=2)
    b = kit.make_study(tmp_path / "b", 1, patient_id="P-1", patient_name="Chen^Wei=陈^伟", modality="MR")
    c = kit.make_study(tmp_path / "c", 1, patient_id="P-2", patient_name="Lin^Fang=林^芳")
    out = tmp_path / "rsp"
    async with start_gateway(rules) as gw:
        code, log = await kit.storescu(gw.port, "XYX_CT", *a.paths, *b.paths, *c.paths)
        assert code == 0, log
        await gw.drain()

        patients = await findscu(
            kit,
            gw.port,
            out,
            "-P",
            "QueryRetrieveLevel=PATIENT",
            "SpecificCharacterSet=ISO_IR 192",
            "PatientName=陈*",
            "PatientID",
            "NumberOfPatientRelatedStudies",
            "NumberOfPatientRelatedInstances",
        )
        assert len(patients) == 1
        assert patients[0].PatientID == "P-1"
        assert str(patients[0].PatientName) == "Chen^Wei=陈^伟"
        assert patients[0].NumberOfPatientRelatedStudies == 2
        assert patients[0].NumberOfPatientRelatedInstances == 4

        studies = await findscu(
            kit,
            gw.port,
            out,
            "-S",
            "QueryRetrieveLevel=STUDY",
            "PatientID=P-1",
            "StudyInstanceUID",
            "ModalitiesInStudy",
            "NumberOfStudyRelatedInstances",
            "StudyDate=20240101-20241231",
            "AccessionNumber",
        )
        assert sorted(s.StudyInstanceUID for s in studies) == sorted([a.uid, b.uid])
        by_uid = {s.StudyInstanceUID: s for s in studies}
        assert by_uid[b.uid].ModalitiesInStudy == "MR"
        assert by_uid[a.uid].NumberOfStudyRelatedInstances == 3
        assert by_uid[a.uid].AccessionNumber == "A0001"

        series = await findscu(
            kit,
            gw.port,
            out,
            "-S",
            "QueryRetrieveLevel=SERIES",
            f"StudyInstanceUID={a.uid}",
            "SeriesInstanceUID",
            "Modality",
            "NumberOfSeriesRelatedInstances",
            "SeriesNumber",
        )
        assert sorted(s.SeriesInstanceUID for s in series) == sorted(a.series_uids)
        assert sorted(s.NumberOfSeriesRelatedInstances for s in series) == [1, 2]

        images = await findscu(
            kit, gw.port, out, "-S", "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={c.uid}", "SOPInstanceUID"
        )
        assert [i.SOPInstanceUID for i in images] == c.sop_uids

        # PATIENT level is not part of the Study Root model
        code, log = await kit.dcmtk(
            "findscu", "-v", "-S", "-aet", "XTW_DX", "-aec", "PHIX", "-k", "QueryRetrieveLevel=PATIENT",
            "-k", "PatientID", "127.0.0.1", str(gw.port),
        )  # fmt: skip
        assert "Final Find Response (Error: DataSetDoesNotMatchSOPClass)" in log, log
