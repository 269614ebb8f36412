"""The FHIRPath-subset compiler on real-shaped resources."""

from __future__ import annotations

from typing import Any

import pytest

from phix.search.fhirpath import UnsupportedExpression, compile_expression, parse
from phix.search.model import element_model


def run(res_type: str, expression: str, resource: dict[str, Any]) -> list[Any]:
    walker = compile_expression(element_model(), res_type, expression)
    return walker([(resource, res_type)])


OBS: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
    "subject": {"reference": "Patient/p1"},
    "performer": [{"reference": "Practitioner/d1"}, {"reference": "Organization/o1"}],
    "effectivePeriod": {"start": "2024-05-01"},
    "valueQuantity": {"value": 5.4, "unit": "mmol/L"},
    "component": [{"code": {"text": "a"}, "valueCodeableConcept": {"text": "pos"}}, {"code": {"text": "b"}}],
}


def test_choice_elements_expand_to_their_json_keys_with_their_type() -> None:
    assert run("Observation", "Observation.effective", OBS) == [({"start": "2024-05-01"}, "Period")]
    assert run("Observation", "(Observation.value as Quantity)", OBS) == [(OBS["valueQuantity"], "Quantity")]
    assert run("Observation", "(Observation.value as CodeableConcept)", OBS) == []
    assert run("Observation", "Observation.value.ofType(Quantity)", OBS) == [
        (OBS["valueQuantity"], "Quantity")
    ]


def test_lists_flatten_and_unions_concatenate() -> None:
    got = run("Observation", "Observation.code | Observation.component.code", OBS)
    assert [v for v, _ in got] == [OBS["code"], {"text": "a"}, {"text": "b"}]
    got = run("Observation", "(Observation.component.value as CodeableConcept)", OBS)
    assert got == [({"text": "pos"}, "CodeableConcept")]


def test_where_resolve_is_filters_references_by_target_type() -> None:
    got = run("Observation", "Observation.performer.where(resolve() is Organization)", OBS)
    assert got == [({"reference": "Organization/o1"}, "Reference")]
    assert run("Observation", "Observation.subject.where(resolve() is Group)", OBS) == []


def test_where_with_an_equality_on_a_child() -> None:
    patient = {"telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b.cn"}]}
    got = run("Patient", "Patient.telecom.where(system='email')", patient)
    assert got == [({"system": "email", "value": "a@b.cn"}, "ContactPoint")]


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({}, False),
        ({"deceasedBoolean": False}, False),
        ({"deceasedBoolean": True}, True),
        ({"deceasedDateTime": "2020-01-01"}, True),
    ],
)
def test_exists_and_not_false(resource: dict[str, Any], expected: bool) -> None:
    expression = "Patient.deceased.exists() and Patient.deceased != false"
    assert run("Patient", expression, resource) == [(expected, "boolean")]


def test_as_function_form_and_case_insensitive_type_names() -> None:
    condition = {"onsetDateTime": "2020", "abatementString": "gone"}
    assert run("Condition", "Condition.onset.as(dateTime) | Condition.onset.as(Period)", condition) == [
        ("2020", "dateTime")
    ]
    assert run("Condition", "Condition.abatement.as(string)", condition) == [("gone", "string")]
    assert run("Observation", "value.as(Quantity)", OBS) == [(OBS["valueQuantity"], "Quantity")]


def test_backbone_and_datatype_paths() -> None:
    patient = {
        "name": [{"family": "陈", "given": ["明", "华"]}],
        "communication": [{"language": {"text": "zh"}}],
    }
    assert [v for v, _ in run("Patient", "Patient.name.given", patient)] == ["明", "华"]
    assert run("Patient", "Patient.communication.language", patient) == [({"text": "zh"}, "CodeableConcept")]


def test_extension_by_url() -> None:
    patient = {"extension": [{"url": "u1", "valueString": "x"}, {"url": "u2", "valueCode": "y"}]}
    assert run("Patient", "Patient.extension('u2').value", patient) == [("y", "code")]
    assert run("Patient", "Patient.extension.where(url='u1').value", patient) == [("x", "string")]


@pytest.mark.parametrize(
    "expression", ["Patient.name.substring(1)", "Patient.name[0]", "Patient.name +", "1 + 2"]
)
def test_unsupported_forms_are_refused(expression: str) -> None:
    with pytest.raises(UnsupportedExpression):
        compile_expression(element_model(), "Patient", expression)


def test_parse_precedence() -> None:
    tree = parse("A.b | A.c and x = 'y'")
    assert type(tree).__name__ == "Binary" and tree.op == "and"
