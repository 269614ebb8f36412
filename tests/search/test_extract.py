"""Index rows extracted from real-shaped resources (Synthea-like)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from phix.search.extract import extract
from phix.search.registry import load_registry, param_hash

CST = timezone(timedelta(hours=8))
REGISTRY = load_registry(None)

BP: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "bp1",
    "meta": {"tag": [{"system": "urn:phix:source", "code": "his"}], "profile": ["http://hl7.org/fhir/StructureDefinition/bp"]},
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9",
                         "display": "Blood pressure panel"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2024-05-01T10:00:00+08:00",
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
         "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
    ],
}  # fmt: skip


def rows_for(
    rows: dict[str, list[tuple[Any, ...]]], table: str, res_type: str, code: str
) -> list[tuple[Any, ...]]:
    ph = param_hash(res_type, code)
    return [row[2:] for row in rows.get(table, []) if row[0] == ph]


def test_observation_rows() -> None:
    rows = extract(REGISTRY, "Observation", BP)
    assert rows_for(rows, "search_token", "Observation", "code") == [
        ("http://loinc.org", "85354-9", "blood pressure panel")
    ]
    assert rows_for(rows, "search_token", "Observation", "status") == [(None, "final", None)]
    assert rows_for(rows, "search_reference", "Observation", "subject") == [("Patient", "p1", None)]
    assert rows_for(rows, "search_reference", "Observation", "patient") == [("Patient", "p1", None)]
    assert rows_for(rows, "search_date", "Observation", "date") == [
        (datetime(2024, 5, 1, 10, tzinfo=CST), datetime(2024, 5, 1, 10, 0, 1, tzinfo=CST))
    ]
    assert rows_for(rows, "search_token", "Observation", "_tag") == [("urn:phix:source", "his", None)]
    assert rows_for(rows, "search_uri", "Observation", "_profile") == [
        ("http://hl7.org/fhir/StructureDefinition/bp",)
    ]
    assert [r[2] for r in rows_for(rows, "search_quantity", "Observation", "component-value-quantity")] == [
        Decimal(120),
        Decimal(80),
    ]
    assert rows_for(rows, "search_quantity", "Observation", "value-quantity") == []


def test_composite_components_share_a_group_per_root() -> None:
    rows = extract(REGISTRY, "Observation", BP)
    h0 = param_hash("Observation", "component-code-value-quantity#0")
    h1 = param_hash("Observation", "component-code-value-quantity#1")
    codes = {r[1]: r[3] for r in rows["search_token"] if r[0] == h0}
    values = {r[1]: r[4] for r in rows["search_quantity"] if r[0] == h1}
    assert {codes[g]: values[g] for g in codes} == {"8480-6": Decimal(120), "8462-4": Decimal(80)}
    # code-value-quantity is rooted at the Observation, which has no value: no rows at all
    assert not [r for r in rows["search_token"] if r[0] == param_hash("Observation", "code-value-quantity#0")]


def test_patient_rows() -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]
                },
                "system": "https://fhir.putian.gov.cn/NamingSystem/resident-id",
                "value": "35030219900101123X",
            }
        ],
        "name": [{"family": "Müller", "given": ["José"]}],
        "telecom": [{"system": "phone", "value": "0594-1234567"}],
        "gender": "male",
        "birthDate": "1990-01-01",
        "address": [{"line": ["城厢区 1 号"], "city": "莆田"}],
        "generalPractitioner": [{"reference": "http://phix.test/fhir/Practitioner/d1"}],
    }
    rows = extract(REGISTRY, "Patient", patient)
    assert rows_for(rows, "search_string", "Patient", "family") == [("muller", "Müller")]
    assert set(rows_for(rows, "search_string", "Patient", "name")) == {("muller", "Müller"), ("jose", "José")}
    assert rows_for(rows, "search_string", "Patient", "address-city") == [("莆田", "莆田")]
    assert rows_for(rows, "search_token", "Patient", "phone") == [("phone", "0594-1234567", None)]
    assert rows_for(rows, "search_token", "Patient", "email") == []
    assert rows_for(rows, "search_token", "Patient", "deceased") == [(None, "false", None)]
    assert rows_for(rows, "search_token", "Patient", "identifier:of-type") == [
        ("http://terminology.hl7.org/CodeSystem/v2-0203", "NI", "35030219900101123X")
    ]
    assert rows_for(rows, "search_reference", "Patient", "general-practitioner") == [
        ("Practitioner", "d1", "http://phix.test/fhir")
    ]


def test_reference_identifier_and_canonical_rows() -> None:
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "owner": {"identifier": {"system": "urn:org", "value": "H1"}},
        "instantiatesCanonical": "http://example.org/ActivityDefinition/read-ct|2",
    }
    rows = extract(REGISTRY, "Task", task)
    assert rows_for(rows, "search_token", "Task", "owner:identifier") == [("urn:org", "H1", None)]
    assert rows_for(rows, "search_reference", "Task", "owner") == []


def test_medication_choice_and_money() -> None:
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "urn:drug", "code": "aspirin"}]},
        "subject": {"reference": "Patient/p1"},
    }
    rows = extract(REGISTRY, "MedicationRequest", request)
    assert rows_for(rows, "search_token", "MedicationRequest", "code") == [("urn:drug", "aspirin", None)]
    assert rows_for(rows, "search_reference", "MedicationRequest", "medication") == []
    eob = {"resourceType": "Claim", "total": {"value": 12.5, "currency": "CNY"}, "created": "2024-01-01"}
    assert extract(REGISTRY, "Claim", eob)["search_date"]
