"""DICOM -> FHIR mapping: names by character-set group, dates, ImagingStudy (R4B-valid), merging."""

from __future__ import annotations

from typing import Any

import pytest

from phix.dicom import mapping
from phix.fhir.validation import validate
from phix.identity.systems import mrn_system


def test_person_name_groups() -> None:
    names = mapping.human_names("Wang^XiaoDong=王^小東")
    assert [n["text"] for n in names] == ["王小東", "Wang XiaoDong"]
    assert names[0]["use"] == "official" and names[0]["family"] == "王" and names[0]["given"] == ["小東"]
    assert names[0]["extension"][0]["valueCode"] == "IDE"
    assert names[1]["extension"][0]["valueCode"] == "ABC" and names[1]["use"] == "usual"
    assert [n["text"] for n in mapping.human_names("=陈伟")] == ["陈伟"]  # clerk typed it unsplit
    assert [n["text"] for n in mapping.human_names("Chen^Wei")] == ["Chen Wei"]
    assert mapping.human_names("") == [] and mapping.human_names("^") == []


@pytest.mark.parametrize(
    ("da", "tm", "tz", "expected"),
    [
        ("20240315", "101530", None, "2024-03-15T10:15:30+08:00"),
        ("20240315", "101530.25", "-0500", "2024-03-15T10:15:30.25-05:00"),
        ("20240315", "10", None, "2024-03-15T10:00:00+08:00"),
        ("20240315", "10:15:30", None, "2024-03-15T10:15:30+08:00"),
        ("20240315", None, None, "2024-03-15"),
        ("20240315", "256100", None, "2024-03-15"),
        ("2024", "101530", None, None),
        (None, "101530", None, None),
    ],
)
def test_datetimes(da: str | None, tm: str | None, tz: str | None, expected: str | None) -> None:
    assert mapping.fhir_datetime(da, tm, tz) == expected


def _study() -> dict[str, Any]:
    return {
        "study_instance_uid": "1.2.3",
        "patient_id": "MRN-1",
        "patient_name": "Chen^Wei=陈^伟",
        "patient_sex": "M",
        "patient_birth_date": "19700101",
        "study_date": "20240315",
        "study_time": "0930",
        "accession_number": "A1",
        "study_description": "胸部CT检查",
        "attributes": {"00080201": {"vr": "SH", "Value": ["+0800"]}},
    }


def _instances() -> list[dict[str, Any]]:
    rows = []
    for n, (series, modality, part) in enumerate([("1.2.3.2", "CT", "CHEST"), ("1.2.3.1", "SR", None)] * 2):
        rows.append(
            {
                "sop_instance_uid": f"1.2.3.{series[-1]}.{n}",
                "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
                "series_instance_uid": series,
                "instance_number": n,
                "series_number": int(series[-1]),
                "modality": modality,
                "body_part": part,
                "series_description": "平扫",
                "series_date": "20240315",
                "series_time": "093100",
            }
        )
    return rows


def test_imaging_study_is_valid_r4() -> None:
    resource = mapping.imaging_study(
        _study(), _instances(), subject="Patient/p1", accession_system="https://x/acc"
    )
    validate("ImagingStudy", resource)
    assert [m["code"] for m in resource["modality"]] == ["CT", "SR"]
    assert [s["uid"] for s in resource["series"]] == ["1.2.3.1", "1.2.3.2"]  # by series number
    assert resource["numberOfInstances"] == 4 and resource["numberOfSeries"] == 2
    ct = resource["series"][1]
    assert ct["bodySite"] == {
        "system": "http://snomed.info/sct",
        "code": "51185008",
        "display": "Thoracic structure",
    }
    assert ct["started"] == "2024-03-15T09:31:00+08:00"
    assert "bodySite" not in resource["series"][0]
    assert resource["started"] == "2024-03-15T09:30:00+08:00"
    assert resource["identifier"][1]["value"] == "A1"


def test_merge_keeps_what_others_wrote() -> None:
    existing = {
        "resourceType": "ImagingStudy",
        "id": "synth-1",
        "meta": {"versionId": "3"},
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
        "status": "registered",
        "subject": {"reference": "Patient/hospital-record"},
        "encounter": {"reference": "Encounter/e1"},
        "numberOfInstances": 99,
    }
    merged = mapping.imaging_study(_study(), _instances(), subject="Patient/p1", existing=existing)
    assert merged["subject"] == {"reference": "Patient/hospital-record"}
    assert merged["encounter"] == {"reference": "Encounter/e1"}
    assert merged["status"] == "available" and merged["numberOfInstances"] == 4
    assert len([i for i in merged["identifier"] if i["system"] == "urn:dicom:uid"]) == 1
    assert "id" not in merged and "meta" not in merged
    assert mapping.same_content({**merged, "id": "x", "meta": {}}, merged)


def test_minimal_patient_and_endpoint_are_valid() -> None:
    patient = mapping.minimal_patient(_study(), mrn_system("xtwzwsy"), "Organization/org-xtwzwsy")
    validate("Patient", patient)
    assert patient["identifier"][0]["value"] == "MRN-1"
    assert patient["gender"] == "male" and patient["birthDate"] == "1970-01-01"
    validate("Endpoint", mapping.endpoint("https://hie.example/dicomweb"))
