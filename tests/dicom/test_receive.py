"""Receiving over DICOM from DCMTK: association policy, C-STORE, indexing, FHIR, routing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_charset_files

from phix.identity.systems import mrn_system

pytestmark = [pytest.mark.usefixtures("clean_sites")]


@pytest.fixture
def rules(tmp_path: Path, sites: dict[str, Any], kit: Any) -> Path:
    return kit.write_routing(
        tmp_path / "routing.yaml", sites["ptsdyyy"].http_port, sites["ptxyfsyy"].dicom_port
    )


async def test_echo_known_ae_and_unknown_ae_rejected(start_gateway: Any, rules: Path, kit: Any) -> None:
    async with start_gateway(rules) as gw:
        code, out = await kit.dcmtk("echoscu", "-aet", "XTW_DX", "-aec", "PHIX", "127.0.0.1", str(gw.port))
        assert code == 0, out
        code, out = await kit.dcmtk(
            "echoscu", "-aet", "PHIX_MONITOR", "-aec", "PHIX", "127.0.0.1", str(gw.port)
        )
        assert code == 0, out
        code, out = await kit.dcmtk(
            "echoscu", "-v", "-aet", "INTRUDER", "-aec", "PHIX", "127.0.0.1", str(gw.port)
        )
        assert code != 0
        assert "Association Rejected" in out and "Calling AE Title Not Recognized" in out, out
        code, out = await kit.dcmtk(
            "echoscu", "-v", "-aet", "XTW_DX", "-aec", "OTHER", "127.0.0.1", str(gw.port)
        )
        assert code != 0 and "Called AE Title Not Recognized" in out, out


async def test_unknown_ae_cannot_store(start_gateway: Any, rules: Path, kit: Any, tmp_path: Path) -> None:
    study = kit.make_study(tmp_path / "s", 1)
    async with start_gateway(rules) as gw:
        code, out = await kit.storescu(gw.port, "INTRUDER", *study.paths)
        assert code != 0 and "Association Rejected" in out, out
        code, out = await kit.storescu(gw.port, "PHIX_MONITOR", *study.paths)
        assert "Status: 0x124" in out, out
        await gw.drain()
        assert not list((gw.root / "dicom" / "objects").rglob("*.dcm"))
        assert not list((gw.root / "dicom" / "incoming").glob("*.dcm"))


async def test_study_stored_indexed_mapped_and_routed(
    start_gateway: Any, rules: Path, kit: Any, tmp_path: Path, sites: dict[str, Any]
) -> None:
    study = kit.make_study(tmp_path / "s", 4, modality="CT", series=2, patient_id="XY-778")
    async with start_gateway(rules) as gw:
        # the county hospital already registered this patient under its MRN
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": mrn_system("xyxyy"), "value": "XY-778"}],
            "name": [{"family": "陈", "given": ["伟"]}],
        }
        created = await gw.client.post("/fhir/Patient", json=patient)
        assert created.status_code == 201, created.text
        patient_id = created.json()["id"]

        code, out = await kit.storescu(gw.port, "XYX_CT", *study.paths)
        assert code == 0, out
        assert out.count("Received Store Response (Success)") == 4, out

        info = await kit.eventually(lambda: _complete(gw, study.uid))
        assert info["number_of_instances"] == 4 and info["number_of_series"] == 2
        assert info["institution"] == "xyxyy" and info["sending_ae"] == "XYX_CT"
        assert info["subject"] == f"Patient/{patient_id}"

        resource = (await gw.client.get(f"/fhir/ImagingStudy/{info['imaging_study_id']}")).json()
        assert resource["subject"] == {"reference": f"Patient/{patient_id}"}
        assert resource["numberOfSeries"] == 2 and resource["numberOfInstances"] == 4
        assert resource["modality"][0]["code"] == "CT"
        assert resource["started"] == "2024-03-15T10:15:30+08:00"
        assert {"system": "urn:dicom:uid", "value": f"urn:oid:{study.uid}", "use": "official"} in resource[
            "identifier"
        ]
        assert resource["series"][0]["bodySite"]["code"] == "51185008"
        assert sorted(i["uid"] for s in resource["series"] for i in s["instance"]) == sorted(study.sop_uids)
        endpoint = (await gw.client.get("/fhir/Endpoint/phix-dicomweb")).json()
        assert endpoint["address"] == "http://phix.test/dicomweb"
        assert resource["endpoint"] == [{"reference": "Endpoint/phix-dicomweb"}]

        # routed by rule county-ct to ptsdyyy (REST), and nowhere else
        await kit.eventually(lambda: gw.delivered(study.uid, "ptsdyyy"))
        assert len(sites["ptsdyyy"].study_instances(study.uid)) == 4
        assert sites["ptxyfsyy"].instance_count() == 0
        routes = (await gw.client.get("/dicom/destinations")).json()
        assert routes == [
            {
                "destination": "ptsdyyy",
                "pending": 0,
                "delivering": 0,
                "delivered": 1,
                "failed": 0,
                "oldest_waiting": None,
                "last_error": None,
                "next_attempt_at": None,
            }
        ]

        # the same study again: idempotent here and at the site
        code, out = await kit.storescu(gw.port, "XYX_CT", *study.paths)
        assert code == 0, out
        await kit.eventually(lambda: _complete(gw, study.uid))
        await kit.eventually(lambda: gw.delivered(study.uid, "ptsdyyy"))
        assert (await gw.study(study.uid))["number_of_instances"] == 4
        assert sites["ptsdyyy"].instance_count() == 4
        assert sites["ptsdyyy"].new_instance_events() == 4
        history = (await gw.client.get(f"/fhir/ImagingStudy/{info['imaging_study_id']}/_history")).json()
        assert history["total"] == 1  # nothing changed: no new version


async def _complete(gw: Any, uid: str) -> dict[str, Any] | None:
    await gw.drain()
    info: dict[str, Any] = await gw.study(uid)
    return info if info.get("state") == "complete" else None


async def test_unknown_mrn_creates_minimal_patient_with_chinese_name(
    start_gateway: Any, rules: Path, kit: Any
) -> None:
    utf8, gb18030 = get_charset_files("chrX1.dcm")[0], get_charset_files("chrX2.dcm")[0]
    async with start_gateway(rules) as gw:
        code, out = await kit.storescu(gw.port, "XTW_DX", Path(utf8), Path(gb18030))
        assert code == 0, out
        await gw.drain()
        studies = (await gw.client.get("/dicomweb/studies", params={"PatientName": "王*"})).json()
        names = sorted(s["00100010"]["Value"][0]["Ideographic"] for s in studies)
        assert names == ["王^小东", "王^小東"]
        assert all(s["00100010"]["Value"][0]["Alphabetic"] == "Wang^XiaoDong" for s in studies)
        for study in studies:
            uid = study["0020000D"]["Value"][0]
            info = await kit.eventually(lambda uid=uid: _complete(gw, uid), timeout=10)
            patient = (await gw.client.get(f"/fhir/{info['subject']}")).json()
            assert patient["identifier"][0]["system"] == mrn_system("xtwzwsy")
            assert patient["identifier"][0]["value"] == study["00100020"]["Value"][0]
            assert patient["name"][0]["text"] in ("王小東", "王小东")
            assert patient["name"][0]["family"] == "王"
            assert patient["name"][1]["family"] == "Wang"


async def test_corrupt_data_set_refused_and_nothing_stored(
    start_gateway: Any, rules: Path, kit: Any, tmp_path: Path
) -> None:
    from pynetdicom import AE, _config

    study = kit.make_study(tmp_path / "s", 1)
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(study.paths[0].read_bytes()[:-3000])
    async with start_gateway(rules) as gw:

        def send() -> int:
            _config.STORE_SEND_CHUNKED_DATASET = True  # send the bytes as they are
            try:
                ae = AE(ae_title="XYX_CT")
                ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2.1"])
                assoc = ae.associate("127.0.0.1", gw.port, ae_title="PHIX")
                assert assoc.is_established
                status = assoc.send_c_store(truncated)
                assoc.release()
                return int(status.Status)
            finally:
                _config.STORE_SEND_CHUNKED_DATASET = False

        import asyncio

        assert await asyncio.to_thread(send) == 0xC000
        await gw.drain()
        assert not list((gw.root / "dicom").rglob("*.dcm"))
        assert (await gw.client.get("/dicomweb/studies")).json() == []


async def test_aborted_association_completes_once_quiet(
    start_gateway: Any, rules: Path, kit: Any, tmp_path: Path
) -> None:
    from pynetdicom import AE

    study = kit.make_study(tmp_path / "s", 2)
    async with start_gateway(rules, stable_seconds=1.0) as gw:

        def send_then_abort() -> None:
            ae = AE(ae_title="XYX_CT")
            ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2.1"])
            assoc = ae.associate("127.0.0.1", gw.port, ae_title="PHIX")
            assert assoc.is_established
            for path in study.paths:
                assert assoc.send_c_store(path).Status == 0
            assoc.abort()

        import asyncio

        await asyncio.to_thread(send_then_abort)
        await gw.drain()
        assert (await gw.study(study.uid))["state"] == "receiving"  # no release: maybe more to come
        info = await kit.eventually(lambda: _complete(gw, study.uid), timeout=15)
        assert info["number_of_instances"] == 2 and info["imaging_study_id"]
