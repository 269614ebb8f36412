"""STOW-RS, QIDO-RS and WADO-RS on the API (PS3.18), errors as OperationOutcomes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest

from phix.dicom import multipart

BOUNDARY = "stow-test-boundary"


def body(*parts: bytes) -> bytes:
    out = b""
    for part in parts:
        out += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


@pytest.fixture
def rules(tmp_path: Path, kit: Any) -> Path:
    no_rules = kit.ROUTING.split("rules:")[0]  # institutions and sites, nothing routed
    return kit.write_routing(tmp_path / "routing.yaml", kit.free_port(), kit.free_port(), text=no_rules)


async def test_stow_qido_wado_round_trip(start_gateway: Any, rules: Path, kit: Any, tmp_path: Path) -> None:
    study = kit.make_study(tmp_path / "s", 2, modality="DX", patient_id="MRN-42", series=2)
    other = kit.make_study(tmp_path / "o", 1, modality="US", patient_id="MRN-43")
    files = [p.read_bytes() for p in study.paths]
    async with start_gateway(rules) as gw:
        stored = await gw.client.post(
            "/dicomweb/studies",
            content=body(*files, b"not dicom at all", other.paths[0].read_bytes()),
            headers={
                "Content-Type": STOW_TYPE,
                "X-Phix-Institution": "xyxyy",
                "Accept": "application/dicom+json",
            },
        )
        assert stored.status_code == 202, stored.text  # some stored, one failed
        answer = stored.json()
        assert [f["00081197"]["Value"] for f in answer["00081198"]["Value"]] == [[0xC000]]
        referenced = answer["00081199"]["Value"]
        assert [r["00081155"]["Value"][0] for r in referenced] == [*study.sop_uids, other.sop_uids[0]]
        assert referenced[0]["00081190"]["Value"][0] == (
            f"http://phix.test/dicomweb/studies/{study.uid}/series/{study.series_uids[0]}"
            f"/instances/{study.sop_uids[0]}"
        )
        # completed in the request: the ImagingStudy exists already
        info = await gw.study(study.uid)
        assert info["state"] == "complete" and info["imaging_study_id"]

        # QIDO-RS
        found = (await gw.client.get("/dicomweb/studies", params={"PatientID": "MRN-42"})).json()
        assert [s["0020000D"]["Value"][0] for s in found] == [study.uid]
        assert found[0]["00201208"]["Value"] == [2] and found[0]["00201206"]["Value"] == [2]
        assert found[0]["00080061"]["Value"] == ["DX"]
        assert found[0]["00081190"]["Value"] == [f"http://phix.test/dicomweb/studies/{study.uid}"]
        both = (await gw.client.get("/dicomweb/studies", params={"StudyDate": "20240101-20241231"})).json()
        assert len(both) == 2
        by_tag = (await gw.client.get("/dicomweb/studies", params={"00080061": "US"})).json()
        assert [s["0020000D"]["Value"][0] for s in by_tag] == [other.uid]
        page = (await gw.client.get("/dicomweb/studies", params={"limit": 1, "offset": 1})).json()
        assert len(page) == 1
        series = (await gw.client.get(f"/dicomweb/studies/{study.uid}/series")).json()
        assert sorted(s["0020000E"]["Value"][0] for s in series) == sorted(study.series_uids)
        assert all(s["00201209"]["Value"] == [1] for s in series)
        instances = (
            await gw.client.get("/dicomweb/instances", params={"SOPInstanceUID": study.sop_uids[1]})
        ).json()
        assert [i["00080018"]["Value"][0] for i in instances] == [study.sop_uids[1]]
        unknown = await gw.client.get("/dicomweb/studies", params={"NoSuchAttribute": "x"})
        assert unknown.status_code == 400
        assert (
            unknown.json()["issue"][0]["diagnostics"]
            == "Unknown or unsupported query attribute 'NoSuchAttribute'"
        )

        # WADO-RS: the study as stored
        retrieved = await gw.client.get(
            f"/dicomweb/studies/{study.uid}",
            headers={"Accept": 'multipart/related; type="application/dicom"'},
        )
        assert retrieved.status_code == 200
        parts = multipart.parse(retrieved.content, retrieved.headers["content-type"])
        assert len(parts) == 2
        got = sorted(pydicom.dcmread(io.BytesIO(content)).SOPInstanceUID for _, content in parts)
        assert got == sorted(study.sop_uids)
        original = pydicom.dcmread(study.paths[0])
        served = next(
            pydicom.dcmread(io.BytesIO(c)) for _, c in parts if study.sop_uids[0] in c.decode("latin-1")
        )
        assert served.PixelData == original.PixelData and served.PatientName == original.PatientName

        one = await gw.client.get(
            f"/dicomweb/studies/{study.uid}/series/{study.series_uids[1]}/instances/{study.sop_uids[1]}",
            headers={
                "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2'
            },
        )
        assert one.status_code == 200
        ((headers, content),) = multipart.parse(one.content, one.headers["content-type"])
        assert "transfer-syntax=1.2.840.10008.1.2" in headers["content-type"]
        assert pydicom.dcmread(io.BytesIO(content)).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
        jpeg = await gw.client.get(
            f"/dicomweb/studies/{study.uid}",
            headers={
                "Accept": 'multipart/related; type="application/dicom";'
                " transfer-syntax=1.2.840.10008.1.2.4.50"
            },
        )
        assert jpeg.status_code == 406
        assert (
            await gw.client.get(f"/dicomweb/studies/{study.uid}", headers={"Accept": "text/html"})
        ).status_code == 406
        assert (await gw.client.get("/dicomweb/studies/1.2.3.4")).status_code == 404

        metadata = (await gw.client.get(f"/dicomweb/studies/{study.uid}/metadata")).json()
        assert len(metadata) == 2
        assert metadata[0]["00100010"]["Value"][0] == {"Alphabetic": "Chen^Wei", "Ideographic": "陈^伟"}
        assert "7FE00010" not in metadata[0]


async def test_stow_refusals(start_gateway: Any, rules: Path, kit: Any, tmp_path: Path) -> None:
    study = kit.make_study(tmp_path / "s", 1)
    data = body(study.paths[0].read_bytes())
    async with start_gateway(rules) as gw:
        anonymous = await gw.client.post(
            "/dicomweb/studies", content=data, headers={"Content-Type": STOW_TYPE}
        )
        assert anonymous.status_code == 400
        assert "X-Phix-Institution" in anonymous.json()["issue"][0]["diagnostics"]
        stranger = await gw.client.post(
            "/dicomweb/studies?institution=nowhere", content=data, headers={"Content-Type": STOW_TYPE}
        )
        assert stranger.status_code == 403
        wrong_type = await gw.client.post(
            "/dicomweb/studies?institution=xyxyy", content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert wrong_type.status_code == 415
        mismatch = await gw.client.post(
            "/dicomweb/studies/1.2.3.4?institution=xyxyy", content=data, headers={"Content-Type": STOW_TYPE}
        )
        assert mismatch.status_code == 409
        assert mismatch.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xA900]
        broken = await gw.client.post(
            "/dicomweb/studies?institution=xyxyy",
            content=b"--x\r\nno end",
            headers={"Content-Type": STOW_TYPE},
        )
        assert broken.status_code == 400
        assert (await gw.client.get("/dicomweb/studies")).json() == []
