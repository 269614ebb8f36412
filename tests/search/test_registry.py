"""The registry: standard R4 definitions, compartments, profiles, compiled expressions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phix.search.model import load_data_file
from phix.search.registry import load_registry, param_hash

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
REQUIRED_TYPES = [
    *("Patient", "Practitioner", "PractitionerRole", "Organization", "OrganizationAffiliation", "Location"),
    *("Endpoint", "Encounter", "EpisodeOfCare", "Observation", "Condition", "Procedure", "DiagnosticReport"),
    *("ImagingStudy", "ServiceRequest", "Task", "MedicationRequest", "MedicationAdministration"),
    *("MedicationStatement", "Medication", "Immunization", "AllergyIntolerance", "CarePlan", "CareTeam"),
    *("DocumentReference", "Consent", "Provenance", "AuditEvent", "Device", "Specimen", "Appointment"),
    *("Communication", "Claim", "ExplanationOfBenefit", "SupplyDelivery"),
]
COMMON = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source")


def test_every_required_type_has_its_parameters_and_the_common_ones() -> None:
    registry = load_registry(None)
    assert set(REQUIRED_TYPES) <= registry.resource_types()
    for res_type in REQUIRED_TYPES:
        params = registry.params_for(res_type)
        assert set(COMMON) <= set(params), res_type
        assert len(params) > len(COMMON), res_type


def test_every_shipped_expression_compiles() -> None:
    registry = load_registry(None)
    unsupported = {
        (t, c): p.unsupported
        for t in registry.resource_types()
        for c, p in registry.params_for(t).items()
        if p.unsupported
    }
    assert unsupported == {("Location", "near"): "parameters of type special are not supported"}


def test_data_file_has_provenance_and_the_spec_definitions() -> None:
    data = load_data_file("search-parameters.json")
    assert "CC0" in data["_provenance"]["license"]
    assert data["_provenance"]["fhirVersion"] == "4.0.1"
    by_id = {(p["base"][0], p["code"]): p for p in data["parameters"]}
    birthdate = by_id[("Patient", "birthdate")]
    assert birthdate == {
        "url": "http://hl7.org/fhir/SearchParameter/individual-birthdate",
        "code": "birthdate",
        "name": "birthdate",
        "base": ["Patient"],
        "type": "date",
        "expression": "Patient.birthDate",
        "comparator": ["eq", "ne", "gt", "ge", "lt", "le", "sa", "eb", "ap"],
    }
    assert all(p["url"].startswith("http://hl7.org/fhir/SearchParameter/") for p in data["parameters"])
    cvq = by_id[("Observation", "code-value-quantity")]
    assert [c["expression"] for c in cvq["component"]] == ["code", "value.as(Quantity)"]


def test_patient_compartment_definition() -> None:
    registry = load_registry(None)
    assert registry.compartment_params("Patient", "Observation") == ("subject", "performer")
    assert registry.compartment_params("Patient", "Patient") == ("link",)
    assert registry.compartment_params("Patient", "AllergyIntolerance") == ("patient", "recorder", "asserter")
    assert "Organization" not in registry.compartment_types("Patient")


def test_params_bound_per_type_with_distinct_hashes() -> None:
    registry = load_registry(None)
    obs, cond = registry.param("Observation", "code"), registry.param("Condition", "code")
    assert obs is not None and cond is not None
    assert obs.expression == "Observation.code" and cond.expression == "Condition.code"
    assert obs.hash == param_hash("Observation", "code") != cond.hash
    assert registry.param("Observation", "subject").targets == ("Group", "Device", "Patient", "Location")  # type: ignore[union-attr]


def test_types_outside_the_list_get_the_common_parameters() -> None:
    registry = load_registry(None)
    assert set(registry.params_for("Group")) == set(COMMON)


def test_profiles_folder_adds_the_pinyin_parameter() -> None:
    registry = load_registry(PROFILES)
    param = registry.param("Patient", "name-pinyin")
    assert param is not None and param.type == "string"
    assert param.url == "https://fhir.putian.gov.cn/SearchParameter/patient-name-pinyin"
    assert param.normalizer.whole_name


def _write(tmp_path: Path, resource: dict[str, object]) -> Path:
    (tmp_path / "sp.json").write_text(json.dumps(resource), encoding="utf-8")
    return tmp_path


def test_a_profile_parameter_on_any_type_is_loaded(tmp_path: Path) -> None:
    sp = {
        "resourceType": "SearchParameter",
        "url": "https://example.org/SearchParameter/patient-nationality",
        "code": "nationality",
        "base": ["Patient"],
        "type": "token",
        "expression": "Patient.extension('http://example.org/nationality').value",
    }
    registry = load_registry(_write(tmp_path, sp))
    param = registry.param("Patient", "nationality")
    assert param is not None and param.walker is not None
    patient = {
        "resourceType": "Patient",
        "extension": [{"url": "http://example.org/nationality", "valueCodeableConcept": {"text": "CN"}}],
    }
    assert param.walker([(patient, "Patient")]) == [({"text": "CN"}, "CodeableConcept")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expression": "Patient.name.substring(1)"}, "function substring"),
        ({"type": None}, "has no type"),
        (
            {
                "extension": [
                    {
                        "url": "https://fhir.putian.gov.cn/StructureDefinition/search-normalizer",
                        "valueCode": "x",
                    }
                ]
            },
            "normaliser",
        ),
    ],
)
def test_a_broken_profile_parameter_fails_loudly(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    sp: dict[str, object] = {
        "resourceType": "SearchParameter",
        "url": "https://example.org/SearchParameter/x",
        "code": "x",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.name",
    }
    sp.update(change)
    with pytest.raises(ValueError, match=message):
        load_registry(_write(tmp_path, sp))
