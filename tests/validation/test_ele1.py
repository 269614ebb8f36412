"""ele-1: every element has a value or children. FHIR JSON has no empty objects, arrays or
strings, and ``null`` only as a filler in an array of primitives."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import orjson
import pytest

NULL = "null is not allowed at {} (only as a filler in an array of primitives)"

CASES: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
    ("empty object in an array", {"name": [{}]}, [("ele1", "Patient.name[0]", "an empty object")]),
    ("empty object", {"maritalStatus": {}}, [("ele1", "Patient.maritalStatus", "an empty object")]),
    ("empty array", {"name": []}, [("ele1", "Patient.name", "an empty array")]),
    (
        "empty array of primitives",
        {"name": [{"family": "陈", "given": []}]},
        [("ele1", "Patient.name[0].given", "an empty array")],
    ),
    (
        "empty string",
        {"name": [{"family": ""}]},
        [("ele1", "Patient.name[0].family", "an empty string")],
    ),
    (
        "empty string in an array",
        {"name": [{"family": "陈", "given": ["", "志明"]}]},
        [("ele1", "Patient.name[0].given[0]", "an empty string")],
    ),
    (
        "empty code",
        {"telecom": [{"system": "", "value": "0594-2345678"}]},
        [("ele1", "Patient.telecom[0].system", "an empty string")],
    ),
    (
        "empty uri",
        {"identifier": [{"system": "", "value": "350302199001011234"}]},
        [("ele1", "Patient.identifier[0].system", "an empty string")],
    ),
    ("only an id", {"maritalStatus": {"id": "m1"}}, [("ele1", "Patient.maritalStatus", "only an id")]),
    ("empty meta", {"meta": {}}, [("ele1", "Patient.meta", "an empty object")]),
    (
        "in an extension",
        {"extension": [{"url": "urn:x", "valueString": ""}]},
        [("ele1", "Patient.extension[0].valueString", "an empty string")],
    ),
    (
        "deep",
        {"contact": [{"name": {"family": "林"}, "telecom": [{}]}]},
        [("ele1", "Patient.contact[0].telecom[0]", "an empty object")],
    ),
    (
        "in a contained resource",
        {"contained": [{"resourceType": "Organization", "id": "o1", "name": ""}]},
        [("ele1", "Patient.contained[0].name", "an empty string")],
    ),
    (
        "null element",
        {"maritalStatus": None},
        [("value", "Patient.maritalStatus", NULL.format("Patient.maritalStatus"))],
    ),
    ("null primitive", {"gender": None}, [("value", "Patient.gender", NULL.format("Patient.gender"))]),
    (
        "several",
        {"name": [{}, {"family": ""}], "address": [], "maritalStatus": {}},
        [
            ("ele1", "Patient.address", "an empty array"),
            ("ele1", "Patient.maritalStatus", "an empty object"),
            ("ele1", "Patient.name[0]", "an empty object"),
            ("ele1", "Patient.name[1].family", "an empty string"),
        ],
    ),
]


@pytest.mark.parametrize(("body", "issues"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_empty_elements_are_refused(
    refused: Any, body: dict[str, Any], issues: list[tuple[Any, ...]]
) -> None:
    await refused({"resourceType": "Patient", **body}, issues)


async def test_observation_component_code(
    api: httpx.AsyncClient, db: asyncpg.Connection, rejected: Any, expect: Any
) -> None:
    body = {"resourceType": "Observation", "status": "final", "code": {"coding": [{}], "text": "BP"}}
    await rejected(
        api, db, orjson.dumps(body), expect(("ele1", "Observation.code.coding[0]", "an empty object"))
    )


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Patient"},  # a resource is not an element: it may be empty
        {"resourceType": "Patient", "name": [{"family": " "}]},  # whitespace is a value
        {"resourceType": "Patient", "maritalStatus": {"id": "m1", "text": "已婚"}},
        {"resourceType": "Patient", "active": False},
        {"resourceType": "Patient", "multipleBirthInteger": 0},
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient"}}],
        },
    ],
)
async def test_elements_with_a_value_or_children_are_accepted(
    api: httpx.AsyncClient, accepted: Any, body: dict[str, Any]
) -> None:
    await accepted(api, orjson.dumps(body))
