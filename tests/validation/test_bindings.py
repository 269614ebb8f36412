"""Required bindings: a ``code`` bound *required* in FHIR R4 takes a code of its value set."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import httpx
import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class

from phix.fhir import walk

GENDER = ["female", "male", "other", "unknown"]
OBS_STATUS = [
    "amended",
    "cancelled",
    "corrected",
    "entered-in-error",
    "final",
    "preliminary",
    "registered",
    "unknown",
]
BUNDLE_TYPE = [
    "batch",
    "batch-response",
    "collection",
    "document",
    "history",
    "message",
    "searchset",
    "transaction",
    "transaction-response",
]
ITEM_TYPE = [
    "attachment",
    "boolean",
    "choice",
    "date",
    "dateTime",
    "decimal",
    "display",
    "group",
    "integer",
    "open-choice",
    "quantity",
    "question",
    "reference",
    "string",
    "text",
    "time",
    "url",
]
OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "体重"}}
MED = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "medicationCodeableConcept": {"text": "阿莫西林"},
    "subject": {"display": "陈志明"},  # (no reference: nothing to resolve)
}

CASES: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
    ("gender", {"resourceType": "Patient", "gender": "M"}, [("code", "Patient.gender", "M", GENDER)]),
    (
        "case matters",
        {"resourceType": "Patient", "gender": "Female"},
        [("code", "Patient.gender", "Female", GENDER)],
    ),
    ("Observation.status", {**OBS, "status": "done"}, [("code", "Observation.status", "done", OBS_STATUS)]),
    (
        "Bundle.type",
        {"resourceType": "Bundle", "type": "list"},
        [("code", "Bundle.type", "list", BUNDLE_TYPE)],
    ),
    (
        "backbone element: Patient.contact.gender",
        {"resourceType": "Patient", "contact": [{"name": {"family": "林"}, "gender": "F"}]},
        [("code", "Patient.contact[0].gender", "F", GENDER)],
    ),
    (
        "data type: Identifier.use",
        {"resourceType": "Patient", "identifier": [{"use": "primary", "value": "350302199001011234"}]},
        [("code", "Patient.identifier[0].use", "primary", ["official", "old", "secondary", "temp", "usual"])],
    ),
    (
        "data type: ContactPoint.system",
        {"resourceType": "Patient", "telecom": [{"system": "mobile", "value": "13900000000"}]},
        [
            (
                "code",
                "Patient.telecom[0].system",
                "mobile",
                ["email", "fax", "other", "pager", "phone", "sms", "url"],
            )
        ],
    ),
    (
        "data type in a choice: Quantity.comparator",
        {**OBS, "valueQuantity": {"value": 5, "comparator": "=="}},
        [("code", "Observation.valueQuantity.comparator", "==", ["<", "<=", ">", ">="])],
    ),
    (
        "Narrative.status",
        {
            "resourceType": "Patient",
            "text": {"status": "auto", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        },
        [("code", "Patient.text.status", "auto", ["additional", "empty", "extensions", "generated"])],
    ),
    (
        "backbone element of a data type: Timing.repeat.dayOfWeek, an array",
        {**MED, "dosageInstruction": [{"timing": {"repeat": {"dayOfWeek": ["mon", "monday"]}}}]},
        [
            (
                "code",
                "MedicationRequest.dosageInstruction[0].timing.repeat.dayOfWeek[1]",
                "monday",
                ["fri", "mon", "sat", "sun", "thu", "tue", "wed"],
            )
        ],
    ),
    (
        "contentReference: Questionnaire.item.item, a long value set",
        {
            "resourceType": "Questionnaire",
            "status": "draft",
            "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "number"}]}],
        },
        [("code", "Questionnaire.item[0].item[0].type", "number", ITEM_TYPE)],
    ),
    (
        "contained resource",
        {"resourceType": "Patient", "contained": [{"resourceType": "Patient", "id": "c", "gender": "女"}]},
        [("code", "Patient.contained[0].gender", "女", GENDER)],
    ),
    (
        "resource in a Bundle",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient", "gender": "x"}}],
        },
        [("code", "Bundle.entry[0].resource.gender", "x", GENDER)],
    ),
]


@pytest.mark.parametrize(("body", "issues"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_codes_outside_required_value_sets_are_refused(
    refused: Any, body: dict[str, Any], issues: list[tuple[Any, ...]]
) -> None:
    await refused(body, issues)


@pytest.mark.parametrize(
    "body",
    [
        {
            "resourceType": "Patient",
            "gender": "unknown",
            "contact": [{"name": {"family": "林"}, "gender": "female"}],
        },
        {"resourceType": "Patient", "identifier": [{"use": "official", "value": "350302199001011234"}]},
        {**OBS, "status": "entered-in-error", "valueQuantity": {"value": 5, "comparator": "<="}},
        {**MED, "dosageInstruction": [{"timing": {"repeat": {"dayOfWeek": ["mon", "fri"]}}}]},
        {"resourceType": "Bundle", "type": "collection"},
        # elements whose value set the spec cannot list (MIME types, currencies) take any code
        {"resourceType": "Patient", "photo": [{"contentType": "image/x-anything"}]},
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-01-01",
            "kind": "instance",
            "fhirVersion": "4.3.0",
            "format": ["json"],
        },
    ],
)
async def test_codes_inside_are_accepted(api: httpx.AsyncClient, accepted: Any, body: dict[str, Any]) -> None:
    await accepted(api, orjson.dumps(body))


# -- the committed data file -----------------------------------------------------------------------


def _data() -> dict[str, Any]:
    text = (resources.files("phix.fhir") / "data" / "required-bindings.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_the_data_file_says_where_it_comes_from_and_what_it_left_out() -> None:
    data = _data()
    provenance = data["_provenance"]
    assert provenance["license"].startswith("CC0-1.0")
    assert provenance["generator"] == "tools/gen_bindings.py"
    assert provenance["kept"] == len(data["bindings"]) > 300
    skipped = provenance["skipped_by_reason"]
    assert provenance["skipped"] == sum(len(v) for v in skipped.values())
    assert (
        "Attachment.contentType (http://hl7.org/fhir/ValueSet/mimetypes)" in skipped["external code system"]
    )
    assert "Condition.clinicalStatus" in skipped["bound element of type CodeableConcept"]
    assert set(data["bindings"].values()) == set(data["valueSets"])


def test_every_binding_reaches_its_element_in_the_r4b_models() -> None:
    """Each element path leads through the R4B models (backbone elements by path, data types by name)
    to a field the walk checks with exactly the file's codes; only elements R4B removed do not."""
    data = _data()
    unresolved = []
    for path, url in data["bindings"].items():
        parts = path.split(".")
        table = walk.shape(get_fhir_model_class(parts[0]), parts[0])
        for name in parts[1:-1]:
            field = table.fields[name]
            assert field.model is not None, path
            table = walk.shape(field.model, field.child_path)
        field = table.fields.get(parts[-1])
        if field is None:
            unresolved.append(path)
            continue
        assert field.codes == frozenset(data["valueSets"][url]) | frozenset(data["r4bCodes"].get(path, ())), (
            path
        )
    assert unresolved == ["EvidenceVariable.type"]  # R4B remodelled EvidenceVariable
