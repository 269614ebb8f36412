"""Media types: application/fhir+json and application/json, ``_format``, ``_pretty``; XML is refused."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import orjson
import pytest

PATIENT = orjson.dumps({"resourceType": "Patient", "name": [{"family": "黄", "given": ["志明"]}]})


@pytest.fixture
def client(shared_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """This module's cases share one app and database (see conftest); each works on its own ids."""
    return shared_client


@pytest.fixture
def conn(shared_conn: asyncpg.Connection) -> asyncpg.Connection:
    return shared_conn


@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json",
        "application/fhir+json; charset=utf-8",
        "application/fhir+json; fhirVersion=4.0",
        "application/json",
        "APPLICATION/JSON; charset=UTF-8",
        None,
    ],
)
async def test_json_bodies_are_accepted(client: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    request = client.build_request("POST", "/Patient", content=PATIENT, headers=headers)
    assert request.headers.get("content-type") == content_type
    response = await client.send(request)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    assert response.json()["name"][0]["family"] == "黄"


@pytest.mark.parametrize(
    ("content_type", "diagnostics"),
    [
        ("application/fhir+xml", "XML is not supported"),
        ("application/xml", "XML is not supported"),
        ("text/xml; charset=utf-8", "XML is not supported"),
        ("text/plain", "'text/plain' is not supported"),
        ("application/x-www-form-urlencoded", "is not supported"),
    ],
)
async def test_other_bodies_are_unsupported_media(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    outcome: Any,
    counts: Any,
    content_type: str,
    diagnostics: str,
) -> None:
    before = await counts(conn)
    for method, url in (("POST", "/Patient"), ("PUT", "/Patient/x1")):
        response = await client.request(method, url, content=PATIENT, headers={"Content-Type": content_type})
        outcome(response, 415, {"code": "not-supported", "diagnostics": diagnostics})
    assert await counts(conn) == before


@pytest.mark.parametrize(
    ("params", "accept"),
    [
        ({}, None),
        ({}, "application/fhir+json"),
        ({}, "application/json"),
        ({}, "application/json, text/plain;q=0.5"),
        ({}, "*/*"),
        ({}, "application/*"),
        ({"_format": "json"}, None),
        ({"_format": "application/json"}, None),
        ({"_format": "application/fhir+json"}, None),
        ({"_format": "json"}, "application/fhir+xml"),  # _format wins over Accept
    ],
)
async def test_json_is_served(client: httpx.AsyncClient, params: dict[str, str], accept: str | None) -> None:
    created = await client.post(
        "/Patient", content=PATIENT, headers={"Content-Type": "application/fhir+json"}
    )
    headers = {"Accept": accept} if accept else {}
    url = f"/Patient/{created.json()['id']}"
    for target in (url, f"{url}/_history/1", f"{url}/_history", "/metadata"):
        response = await client.get(target, params=params, headers=headers)
        assert response.status_code == 200, (target, response.text)
        assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    assert (await client.get(url, params=params, headers=headers)).content == created.content


@pytest.mark.parametrize(
    ("params", "accept", "diagnostics"),
    [
        ({}, "application/fhir+xml", "Accept"),
        ({}, "application/xml", "Accept"),
        ({}, "text/html", "Accept"),
        ({"_format": "xml"}, None, "_format 'xml'"),
        ({"_format": "application/fhir+xml"}, None, "_format"),
        ({"_format": "xml"}, "application/fhir+json", "_format"),  # _format wins over Accept
        ({"_format": "turtle"}, None, "_format"),
    ],
)
async def test_other_formats_are_not_acceptable(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    outcome: Any,
    counts: Any,
    params: dict[str, str],
    accept: str | None,
    diagnostics: str,
) -> None:
    headers = {"Accept": accept} if accept else {}
    created = await client.post("/Patient", content=PATIENT)
    res_id = created.json()["id"]
    before = await counts(conn)
    for method, url, body in (
        ("GET", f"/Patient/{res_id}", None),
        ("GET", f"/Patient/{res_id}/_history/1", None),
        ("GET", "/_history", None),
        ("GET", "/metadata", None),
        ("POST", "/Patient", PATIENT),
        ("PUT", f"/Patient/{res_id}", orjson.dumps({"resourceType": "Patient", "id": res_id})),
        ("DELETE", f"/Patient/{res_id}", None),
    ):
        response = await client.request(method, url, params=params, headers=headers, content=body)
        outcome(response, 406, {"code": "not-supported", "diagnostics": diagnostics})
    assert await counts(conn) == before  # refused before anything was written


async def test_pretty(client: httpx.AsyncClient) -> None:
    created = await client.post("/Patient", content=PATIENT)
    url = f"/Patient/{created.json()['id']}"
    pretty = await client.get(url, params={"_pretty": "true"})
    assert pretty.status_code == 200
    assert pretty.content != created.content
    assert pretty.content.startswith(b'{\n  "resourceType": "Patient"')
    assert orjson.loads(pretty.content) == created.json()
    assert (await client.get(url, params={"_pretty": "false"})).content == created.content
    history = await client.get(f"{url}/_history", params={"_pretty": "true"})
    assert b'\n  "type": "history"' in history.content
    metadata = await client.get("/metadata", params={"_pretty": "true"})
    assert metadata.content.startswith(b'{\n  "resourceType": "CapabilityStatement"')
    written = await client.post("/Patient", content=PATIENT, params={"_pretty": "true"})
    assert written.status_code == 201
    assert b'\n  "resourceType": "Patient"' in written.content
    # the stored form stays compact whatever was asked when writing
    stored = await client.get(f"/Patient/{written.json()['id']}")
    assert b"\n" not in stored.content
