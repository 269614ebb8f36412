"""Primitive extensions: ``_birthDate`` is an object (``id``, ``extension``); ``_given`` is an array
aligned with ``given``, with ``null`` fillers on either side."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

EXT = {
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
    ]
}
PINYIN = {"extension": [{"url": "urn:phix:pinyin", "valueString": "Zhiming"}]}

CASES: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = [
    (
        "wrong JSON type inside",
        {"_birthDate": {"extension": [{"url": "urn:x", "valueBoolean": "true"}]}},
        [
            (
                "value",
                "Patient._birthDate.extension[0].valueBoolean",
                "Expected a JSON boolean at Patient._birthDate.extension[0].valueBoolean",
            )
        ],
    ),
    (
        "not an object",
        {"_birthDate": 5},
        [("value", "Patient._birthDate", "Expected a JSON object at Patient._birthDate")],
    ),
    (
        "null",
        {"birthDate": "1990-01-01", "_birthDate": None},
        [("value", "Patient._birthDate", "Expected a JSON object at Patient._birthDate")],
    ),
    (
        "array for a single value",
        {"_active": [EXT]},
        [("value", "Patient._active", "Expected a JSON object at Patient._active")],
    ),
    (
        "empty",
        {"birthDate": "1990-01-01", "_birthDate": {}},
        [("ele1", "Patient._birthDate", "an empty object")],
    ),
    (
        "only an id, no value",
        {"_birthDate": {"id": "b1"}},
        [("ele1", "Patient._birthDate", "neither a value nor an extension")],
    ),
    (
        "null in the values without an extension",
        {"name": [{"given": ["志明", None]}]},
        [
            (
                "value",
                "Patient.name[0].given[1]",
                "null at Patient.name[0].given[1] has no extension in _given[1]",
            )
        ],
    ),
    (
        "null on both sides",
        {"name": [{"given": ["志明", None], "_given": [PINYIN, None]}]},
        [
            (
                "value",
                "Patient.name[0].given[1]",
                "null at Patient.name[0].given[1] has no extension in _given[1]",
            )
        ],
    ),
    (
        "arrays of different lengths",
        {"name": [{"given": ["志明"], "_given": [None, PINYIN]}]},
        [
            (
                "value",
                "Patient.name[0]._given",
                "Patient.name[0]._given has 2 items but given has 1; the arrays must align (null as filler)",
            )
        ],
    ),
    (
        "not an array",
        {"name": [{"given": ["志明", None], "_given": PINYIN}]},
        [
            ("value", "Patient.name[0]._given", "Expected a JSON array at Patient.name[0]._given"),
            (
                "value",
                "Patient.name[0].given[1]",
                "null at Patient.name[0].given[1] has no extension in _given[1]",
            ),
        ],
    ),
    (
        "empty array",
        {"name": [{"given": ["志明"], "_given": []}]},
        [("ele1", "Patient.name[0]._given", "an empty array")],
    ),
    (
        "a lone null",
        {"name": [{"_given": [None]}]},
        [("ele1", "Patient.name[0]._given[0]", "null with no value")],
    ),
    (
        "not an object in the array",
        {"name": [{"given": ["志明"], "_given": [5]}]},
        [
            (
                "value",
                "Patient.name[0]._given[0]",
                "Expected a JSON object or null at Patient.name[0]._given[0]",
            )
        ],
    ),
    (
        "wrong JSON type in an array item",
        {"name": [{"given": ["志明"], "_given": [{"extension": [{"url": "urn:x", "valueInteger": "1"}]}]}]},
        [
            (
                "value",
                "Patient.name[0]._given[0].extension[0].valueInteger",
                "Expected a JSON integer at Patient.name[0]._given[0].extension[0].valueInteger",
            )
        ],
    ),
    (
        "unknown key inside",
        {"_birthDate": {"extension": EXT["extension"], "colour": "blue"}},
        [("structure", "Patient._birthDate.colour")],
    ),
]


@pytest.mark.parametrize(("body", "issues"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_primitive_extensions_are_refused(
    refused: Any, body: dict[str, Any], issues: list[tuple[Any, ...]]
) -> None:
    await refused({"resourceType": "Patient", **body}, issues)


@pytest.mark.parametrize(
    "body",
    [
        {"_birthDate": EXT},  # an extension instead of the value
        {"birthDate": "1990-01-01", "_birthDate": {"id": "b1"}},
        {"gender": "female", "_gender": EXT},
        {"_gender": EXT},  # no code to check against the binding
        {"name": [{"given": ["志明", None], "_given": [PINYIN, EXT]}]},
        {"name": [{"given": [None, "明"], "_given": [EXT, None]}]},
        {"name": [{"_given": [EXT]}]},
        {"name": [{"family": "陈", "_family": {"extension": [{"url": "urn:x", "valueDecimal": 1.5}]}}]},
    ],
)
async def test_good_primitive_extensions_are_stored_as_sent(
    api: httpx.AsyncClient, accepted: Any, body: dict[str, Any]
) -> None:
    await accepted(api, orjson.dumps({"resourceType": "Patient", **body}))
