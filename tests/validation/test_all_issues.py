"""Every problem of a resource is reported at once, one issue per element, ordered by path, also
when pydantic stopped at a field error before its own required-element checks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from phix.errors import FhirError
from phix.fhir.validation import validate

CASES: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
    (
        "no code and no status",
        {"resourceType": "Observation"},
        [("required", "Observation.code"), ("required", "Observation.status")],
    ),
    (
        "required, unknown, ele-1, binding and JSON type together",
        {
            "resourceType": "Observation",
            "valueQuantity": {"value": "5", "comparator": "=="},
            "note": [{}],
            "colour": "blue",
        },
        [
            ("required", "Observation.code"),
            ("structure", "Observation.colour"),
            ("ele1", "Observation.note[0]", "an empty object"),
            ("required", "Observation.note[0].text"),
            ("required", "Observation.status"),
            ("code", "Observation.valueQuantity.comparator", "==", ["<", "<=", ">", ">="]),
            (
                "value",
                "Observation.valueQuantity.value",
                "Expected a JSON number at Observation.valueQuantity.value",
            ),
        ],
    ),
    (
        "a format error next to walk issues",
        {"resourceType": "Patient", "birthDate": "1990-02-30", "gender": "M", "name": [{}], "active": "true"},
        [
            ("value", "Patient.active", "Expected a JSON boolean at Patient.active"),
            ("value", "Patient.birthDate", re.compile(r".+ at Patient\.birthDate")),
            ("code", "Patient.gender", "M", ["female", "male", "other", "unknown"]),
            ("ele1", "Patient.name[0]", "an empty object"),
        ],
    ),
    (
        "required choice and required reference",
        {"resourceType": "MedicationRequest", "status": "active", "intent": "plan"},
        [
            (
                "required",
                "MedicationRequest.medication[x]",
                " (one of medicationCodeableConcept, medicationReference)",
            ),
            ("required", "MedicationRequest.subject"),
        ],
    ),
    (
        "in backbone elements, ordered by index",
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "血压"},
            "component": [{"code": {"text": "收缩压"}}] * 9 + [{"valueString": "x"}, {}],
        },
        [
            ("required", "Observation.component[9].code"),
            ("ele1", "Observation.component[10]", "an empty object"),
            ("required", "Observation.component[10].code"),
        ],
    ),
]


@pytest.mark.parametrize(("body", "issues"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_every_issue_is_reported(
    refused: Any, body: dict[str, Any], issues: list[tuple[Any, ...]]
) -> None:
    await refused(body, issues)


def test_one_issue_per_element() -> None:
    """pydantic and the walk both see a wrong type at Patient.name[0].given[1]; one issue says so."""
    body = {"resourceType": "Patient", "name": [{"given": ["志明", 5]}], "active": 2}
    with pytest.raises(FhirError) as caught:
        validate("Patient", body)
    assert [(i.code, list(i.expression)) for i in caught.value.issues] == [
        ("value", ["Patient.active"]),
        ("value", ["Patient.name[0].given[1]"]),
    ]
