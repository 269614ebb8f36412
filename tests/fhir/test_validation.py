"""Bad input: 400 when it cannot be read, 422 when it breaks FHIR rules, always a whole
OperationOutcome naming the element, and never a write."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

MALFORMED = [
    (b'{"resourceType": "Patient",', "not valid JSON"),
    (b"", "empty"),
    (b"   ", "empty"),
    (b"\xff\xfe", "not valid JSON"),
    (b'["resourceType", "Patient"]', "must be a JSON object"),
    (b'"Patient"', "must be a JSON object"),
    (b"null", "must be a JSON object"),
]


@pytest.fixture
def client(shared_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """This module's cases share one app and database (see conftest); each works on its own ids."""
    return shared_client


@pytest.fixture
def conn(shared_conn: asyncpg.Connection) -> asyncpg.Connection:
    return shared_conn


@pytest.mark.parametrize(("body", "diagnostics"), MALFORMED)
async def test_unreadable_bodies(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    outcome: Any,
    counts: Any,
    body: bytes,
    diagnostics: str,
) -> None:
    before = await counts(conn)
    headers = {"Content-Type": "application/fhir+json"}
    for method, url in (("POST", "/Patient"), ("PUT", "/Patient/p1")):
        response = await client.request(method, url, content=body, headers=headers)
        outcome(response, 400, {"code": "structure", "diagnostics": diagnostics})
    assert await counts(conn) == before


@pytest.mark.parametrize(
    ("body", "status", "code", "diagnostics"),
    [
        ({"name": [{"family": "王"}]}, 400, "structure", "no resourceType"),
        ({"resourceType": 7}, 400, "structure", "no resourceType"),
        ({"resourceType": "Patients"}, 400, "structure", "Unknown resourceType 'Patients'"),
        ({"resourceType": "patient"}, 400, "structure", "Unknown resourceType 'patient'"),
        ({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}, 400, "invalid", "match"),
    ],
)
async def test_resource_type_problems(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    outcome: Any,
    counts: Any,
    body: dict[str, Any],
    status: int,
    code: str,
    diagnostics: str,
) -> None:
    before = await counts(conn)
    for method, url in (("POST", "/Patient"), ("PUT", "/Patient/p1")):
        sent = {**body, "id": "p1"} if method == "PUT" else body
        response = await client.request(method, url, json=sent)
        outcome(response, status, {"code": code, "diagnostics": diagnostics, "expression": ["resourceType"]})
    assert await counts(conn) == before


async def test_update_id_must_match_the_url(
    client: httpx.AsyncClient, conn: asyncpg.Connection, outcome: Any, counts: Any
) -> None:
    before = await counts(conn)
    outcome(
        await client.put("/Patient/p1", json={"resourceType": "Patient", "id": "p2"}),
        400,
        {
            "code": "invalid",
            "expression": ["Patient.id"],
            "diagnostics": "'p2' does not match the URL's id 'p1'",
        },
    )
    outcome(
        await client.put("/Patient/p1", json={"resourceType": "Patient"}),
        400,
        {"code": "invalid", "expression": ["Patient.id"], "diagnostics": "must carry the id"},
    )
    outcome(
        await client.put("/Patient/p1", json={"resourceType": "Patient", "id": 1}),
        400,
        {"code": "invalid", "expression": ["Patient.id"]},
    )
    assert await counts(conn) == before


def _issue(code: str, path: str, diagnostics: str | re.Pattern[str] | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"code": code, "expression": [path]}
    if diagnostics is not None:
        issue["diagnostics"] = diagnostics
    return issue


INVALID = [
    ({"resourceType": "Patient", "active": "true"}, [_issue("value", "Patient.active", "JSON boolean")]),
    ({"resourceType": "Patient", "active": 1}, [_issue("value", "Patient.active", "JSON boolean")]),
    ({"resourceType": "Patient", "active": None}, [_issue("value", "Patient.active")]),
    (
        {"resourceType": "Patient", "multipleBirthInteger": "2"},
        [_issue("value", "Patient.multipleBirthInteger")],
    ),
    ({"resourceType": "Patient", "birthDate": "1990-13-01"}, [_issue("value", "Patient.birthDate")]),
    ({"resourceType": "Patient", "birthDate": 1990}, [_issue("value", "Patient.birthDate")]),
    ({"resourceType": "Patient", "name": {"family": "陈"}}, [_issue("value", "Patient.name", "list")]),
    ({"resourceType": "Patient", "name": [{"given": "志明"}]}, [_issue("value", "Patient.name[0].given")]),
    (
        {"resourceType": "Patient", "telecom": [{"system": "phone", "value": "0594-1"}, {"system": 5}]},
        [_issue("value", "Patient.telecom[1].system")],
    ),
    (
        {"resourceType": "Patient", "extension": [{"url": "urn:x", "valueBoolean": "no"}]},
        [_issue("value", "Patient.extension[0].valueBoolean")],
    ),
    (
        {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "active": "yes"}]},
        [_issue("value", "Patient.contained[0].active")],
    ),
    (
        {"resourceType": "Patient", "colour": "blue"},
        [_issue("structure", "Patient.colour", "Unknown element")],
    ),
    (
        {"resourceType": "Patient", "name": [{"family": "陈", "nickname": "阿明"}]},
        [_issue("structure", "Patient.name[0].nickname", "Unknown element")],
    ),
    (
        {"resourceType": "Patient", "birthDate": "1990-02-30", "colour": "blue"},
        [_issue("value", "Patient.birthDate"), _issue("structure", "Patient.colour")],
    ),
    (
        {"resourceType": "Observation", "status": "final"},
        [_issue("required", "Observation.code", re.compile("required", re.IGNORECASE))],
    ),
    (
        {"resourceType": "Observation", "code": {"text": "BP"}},
        [_issue("required", "Observation.status", re.compile("required", re.IGNORECASE))],
    ),
    (
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "valueQuantity": {"value": "5"},
        },
        [_issue("value", "Observation.valueQuantity.value", "JSON number")],
    ),
    ({"resourceType": "Patient", "id": "a b"}, [_issue("value", "Patient.id")]),
]


@pytest.mark.parametrize(("body", "issues"), INVALID, ids=[str(i) for i in range(len(INVALID))])
async def test_invalid_resources_are_unprocessable(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    outcome: Any,
    counts: Any,
    body: dict[str, Any],
    issues: list[dict[str, Any]],
) -> None:
    before = await counts(conn)
    res_type = body["resourceType"]
    outcome(await client.post(f"/{res_type}", json=body), 422, *issues)
    if "id" not in body:
        outcome(await client.put(f"/{res_type}/v1", json={**body, "id": "v1"}), 422, *issues)
    assert await counts(conn) == before


async def test_invalid_update_leaves_the_previous_version_current(
    client: httpx.AsyncClient, conn: asyncpg.Connection, outcome: Any
) -> None:
    created = await client.post("/Patient", json={"resourceType": "Patient", "gender": "female"})
    res_id = created.json()["id"]
    rows_before = await conn.fetch("SELECT * FROM resources ORDER BY rid")
    versions_before = await conn.fetch("SELECT * FROM resource_versions ORDER BY seq")
    bad = {"resourceType": "Patient", "id": res_id, "active": "true"}
    outcome(await client.put(f"/Patient/{res_id}", json=bad), 422, _issue("value", "Patient.active"))
    bad_json = b'{"resourceType": "Patient", "id": "' + res_id.encode() + b'", '
    response = await client.put(f"/Patient/{res_id}", content=bad_json)
    outcome(response, 400, {"code": "structure"})
    assert await conn.fetch("SELECT * FROM resources ORDER BY rid") == rows_before
    assert await conn.fetch("SELECT * FROM resource_versions ORDER BY seq") == versions_before
    current = await client.get(f"/Patient/{res_id}")
    assert current.content == created.content
    assert current.headers["etag"] == 'W/"1"'
    # the next good write is version 2: no number was used up by the failures
    good = await client.put(f"/Patient/{res_id}", json={"resourceType": "Patient", "id": res_id})
    assert good.json()["meta"]["versionId"] == "2"


async def test_stored_bytes_are_the_validated_resource(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    """What is stored is exactly what create answered; unknown-but-valid details survive."""
    body = {
        "resourceType": "Patient",
        "name": [
            {
                "family": "郑",
                "given": ["淑芬"],
                "_family": {"extension": [{"url": "urn:x", "valueString": "z"}]},
            }
        ],
        "birthDate": "1948",
        "multipleBirthInteger": 2,
        "extension": [{"url": "urn:decimal", "valueDecimal": 1.50}],
    }
    created = await client.post("/Patient", content=orjson.dumps(body))
    assert created.status_code == 201, created.text
    res_id = created.json()["id"]
    stored = await conn.fetchval("SELECT body FROM resources WHERE res_id = $1", res_id)
    assert stored == created.content
    versions = await conn.fetch("SELECT body FROM resource_versions WHERE res_id = $1", res_id)
    assert [v["body"] for v in versions] == [created.content]
    parsed = orjson.loads(stored)
    assert parsed["name"] == body["name"]
    assert parsed["birthDate"] == "1948"
