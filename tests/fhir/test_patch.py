"""patch with JSON Patch (``application/json-patch+json``)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import orjson
import pytest

PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture
def client(shared_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """This module's cases share one app and database (see conftest); each works on its own ids."""
    return shared_client


@pytest.fixture
def conn(shared_conn: asyncpg.Connection) -> asyncpg.Connection:
    return shared_conn


async def _patient(client: httpx.AsyncClient) -> dict[str, Any]:
    body = {
        "resourceType": "Patient",
        "active": True,
        "name": [{"family": "林", "given": ["秀英"]}],
        "gender": "female",
    }
    response = await client.post("/Patient", json=body)
    assert response.status_code == 201
    created: dict[str, Any] = response.json()
    return created


async def _patch(client: httpx.AsyncClient, url: str, ops: Any, **headers: str) -> httpx.Response:
    raw = ops if isinstance(ops, bytes) else orjson.dumps(ops)
    return await client.patch(url, content=raw, headers={**PATCH, **headers})


async def test_patch_applies_operations_and_makes_a_version(client: httpx.AsyncClient) -> None:
    patient = await _patient(client)
    url = f"/Patient/{patient['id']}"
    ops = [
        {"op": "test", "path": "/gender", "value": "female"},
        {"op": "replace", "path": "/active", "value": False},
        {"op": "add", "path": "/name/0/given/-", "value": "丽"},
        {"op": "add", "path": "/birthDate", "value": "1962-03-08"},
        {"op": "remove", "path": "/gender"},
        {"op": "copy", "from": "/name/0", "path": "/name/-"},
        {"op": "move", "from": "/name/1/family", "path": "/name/1/text"},
        {"op": "replace", "path": "/meta/versionId", "value": "99"},  # the server decides
    ]
    response = await _patch(client, url, ops)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    assert response.headers["content-location"].endswith(f"{url}/_history/2")
    assert result["active"] is False
    assert result["name"] == [
        {"family": "林", "given": ["秀英", "丽"]},
        {"given": ["秀英", "丽"], "text": "林"},
    ]
    assert result["birthDate"] == "1962-03-08"
    assert "gender" not in result
    assert (await client.get(url)).content == response.content
    assert (await client.get(f"{url}/_history/1")).json() == patient


async def test_failed_test_operation_changes_nothing(
    client: httpx.AsyncClient, conn: asyncpg.Connection, outcome: Any, counts: Any
) -> None:
    patient = await _patient(client)
    url = f"/Patient/{patient['id']}"
    before = await counts(conn)
    ops = [
        {"op": "replace", "path": "/active", "value": False},
        {"op": "test", "path": "/gender", "value": "male"},
    ]
    outcome(await _patch(client, url, ops), 412, {"code": "processing", "diagnostics": "test failed"})
    assert await counts(conn) == before
    assert (await client.get(url)).json() == patient


@pytest.mark.parametrize(
    ("ops", "diagnostics"),
    [
        ([{"op": "replace", "path": "/nonexistent", "value": 1}], "cannot be applied"),
        ([{"op": "remove", "path": "/name/5"}], "cannot be applied"),
        ([{"op": "add", "path": "/name/9/family", "value": "x"}], "cannot be applied"),
        ([{"op": "move", "from": "/missing", "path": "/x"}], "cannot be applied"),
        ([{"op": "add", "path": "/gender/sub", "value": "x"}], "cannot be applied"),
        ([{"op": "add", "path": "/name/one", "value": {}}], "cannot be applied"),
    ],
)
async def test_patch_to_a_missing_location_is_unprocessable(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    outcome: Any,
    counts: Any,
    ops: list[dict[str, Any]],
    diagnostics: str,
) -> None:
    patient = await _patient(client)
    before = await counts(conn)
    response = await _patch(client, f"/Patient/{patient['id']}", ops)
    outcome(response, 422, {"code": "processing", "diagnostics": diagnostics})
    assert await counts(conn) == before


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"op": "add", "path": "/active", "value": true}',  # an object, not an array
        b'[{"op": "frobnicate", "path": "/active"}]',
        b'[{"path": "/active", "value": true}]',
        b'[{"op": "add", "value": true}]',
        b'[{"op": "add", "path": "active", "value": true}]',  # a pointer starts with "/"
        b'[{"op": "add", "path": "/name/~2", "value": true}]',  # "~2" is no valid escape
        b'[{"op": "remove", "path": 5}]',
        b'[{"op": 1, "path": "/active"}]',
        b"[1]",
        b'["add"]',
    ],
)
async def test_malformed_patch_documents_are_rejected(
    client: httpx.AsyncClient, conn: asyncpg.Connection, outcome: Any, counts: Any, body: bytes
) -> None:
    patient = await _patient(client)
    before = await counts(conn)
    outcome(await _patch(client, f"/Patient/{patient['id']}", body), 400, {"code": "structure"})
    assert await counts(conn) == before


async def test_patch_that_breaks_the_resource_is_refused(
    client: httpx.AsyncClient, conn: asyncpg.Connection, outcome: Any, counts: Any
) -> None:
    patient = await _patient(client)
    url = f"/Patient/{patient['id']}"
    before = await counts(conn)
    outcome(
        await _patch(client, url, [{"op": "replace", "path": "/active", "value": "yes"}]),
        422,
        {"code": "value", "expression": ["Patient.active"]},
    )
    outcome(
        await _patch(client, url, [{"op": "add", "path": "/colour", "value": "blue"}]),
        422,
        {"code": "structure", "expression": ["Patient.colour"], "diagnostics": "Unknown element"},
    )
    outcome(
        await _patch(client, url, [{"op": "replace", "path": "/id", "value": "other"}]),
        422,
        {"code": "processing", "expression": ["Patient.id"], "diagnostics": "may not change"},
    )
    outcome(
        await _patch(client, url, [{"op": "replace", "path": "/resourceType", "value": "Group"}]),
        422,
        {"code": "processing", "expression": ["Patient.id"]},
    )
    outcome(
        await _patch(client, url, [{"op": "replace", "path": "", "value": [1, 2]}]),
        422,
        {"code": "processing", "diagnostics": "does not leave a resource"},
    )
    assert await counts(conn) == before
    assert (await client.get(url)).json() == patient


async def test_patch_preconditions_and_media_type(client: httpx.AsyncClient, outcome: Any) -> None:
    patient = await _patient(client)
    url = f"/Patient/{patient['id']}"
    ops = [{"op": "replace", "path": "/active", "value": False}]
    outcome(
        await client.patch(url, json=ops),  # application/json is not a patch format
        415,
        {"code": "not-supported", "diagnostics": "application/json-patch+json"},
    )
    outcome(
        await client.patch(url, content=orjson.dumps(ops), headers={"Content-Type": "application/fhir+json"}),
        415,
        {"code": "not-supported"},
    )
    outcome(await _patch(client, url, ops, **{"If-Match": 'W/"7"'}), 412, {"code": "conflict"})
    ok = await _patch(client, url, ops, **{"If-Match": 'W/"1"'})
    assert ok.status_code == 200
    assert ok.headers["etag"] == 'W/"2"'
    outcome(await _patch(client, "/Patient/unknown", ops), 404, {"code": "not-found"})
    outcome(await _patch(client, "/Unicorn/1", ops), 404, {"code": "not-supported"})
    assert (await client.delete(url)).status_code == 204
    outcome(await _patch(client, url, ops), 410, {"code": "deleted"})


async def test_patch_prefer_return(client: httpx.AsyncClient) -> None:
    patient = await _patient(client)
    url = f"/Patient/{patient['id']}"
    ops = [{"op": "replace", "path": "/active", "value": False}]
    minimal = await _patch(client, url, ops, Prefer="return=minimal")
    assert minimal.status_code == 200
    assert minimal.content == b""
    assert minimal.headers["etag"] == 'W/"2"'
    info = await _patch(client, url, ops, Prefer="return=OperationOutcome")
    assert info.status_code == 200
    assert info.json()["resourceType"] == "OperationOutcome"
    assert info.json()["issue"][0]["severity"] == "information"
    assert info.headers["etag"] == 'W/"3"'
