"""If-Match optimistic locking, conditional read and ``Prefer: return=...``."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import asyncpg
import httpx
import pytest


@pytest.fixture
def client(shared_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """This module's cases share one app and database (see conftest); each works on its own ids."""
    return shared_client


@pytest.fixture
def conn(shared_conn: asyncpg.Connection) -> asyncpg.Connection:
    return shared_conn


async def _patient(client: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    response = await client.post("/Patient", json={"resourceType": "Patient", "gender": "unknown"})
    assert response.status_code == 201
    return response.json()["id"], response


async def test_if_match_on_update(
    client: httpx.AsyncClient, conn: asyncpg.Connection, outcome: Any, counts: Any
) -> None:
    res_id, _ = await _patient(client)
    body = {"resourceType": "Patient", "id": res_id}
    ok = await client.put(f"/Patient/{res_id}", json=body, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200
    assert ok.headers["etag"] == 'W/"2"'
    before = await counts(conn)
    stale = await client.put(f"/Patient/{res_id}", json=body, headers={"If-Match": 'W/"1"'})
    outcome(
        stale,
        412,
        {"code": "conflict", "diagnostics": f"If-Match 1 but Patient/{res_id} is at version 2"},
    )
    assert await counts(conn) == before
    # the strong and bare forms name the same version
    assert (await client.put(f"/Patient/{res_id}", json=body, headers={"If-Match": '"2"'})).status_code == 200
    assert (await client.put(f"/Patient/{res_id}", json=body, headers={"If-Match": "3"})).status_code == 200
    outcome(
        await client.put(f"/Patient/{res_id}", json=body, headers={"If-Match": "latest"}),
        400,
        {"code": "invalid", "diagnostics": "If-Match"},
    )
    # If-Match on a resource that does not exist cannot create it
    missing = await client.put(
        "/Patient/not-yet", json={"resourceType": "Patient", "id": "not-yet"}, headers={"If-Match": 'W/"1"'}
    )
    outcome(missing, 412, {"code": "conflict"})
    assert (await client.get("/Patient/not-yet")).status_code == 404


async def test_if_match_on_delete(client: httpx.AsyncClient, outcome: Any) -> None:
    res_id, _ = await _patient(client)
    outcome(
        await client.delete(f"/Patient/{res_id}", headers={"If-Match": 'W/"2"'}), 412, {"code": "conflict"}
    )
    assert (await client.get(f"/Patient/{res_id}")).status_code == 200
    deleted = await client.delete(f"/Patient/{res_id}", headers={"If-Match": 'W/"1"'})
    assert deleted.status_code == 204
    assert (await client.get(f"/Patient/{res_id}")).status_code == 410


async def test_concurrent_updates_with_the_same_if_match_only_one_wins(client: httpx.AsyncClient) -> None:
    import asyncio

    res_id, _ = await _patient(client)
    responses = await asyncio.gather(
        *(
            client.put(
                f"/Patient/{res_id}",
                json={"resourceType": "Patient", "id": res_id, "gender": gender},
                headers={"If-Match": 'W/"1"'},
            )
            for gender in ("male", "female", "other", "unknown", "male", "female")
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412, 412, 412]
    assert (await client.get(f"/Patient/{res_id}")).headers["etag"] == 'W/"2"'


async def test_if_none_match(client: httpx.AsyncClient) -> None:
    res_id, _ = await _patient(client)
    not_modified = await client.get(f"/Patient/{res_id}", headers={"If-None-Match": 'W/"1"'})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == 'W/"1"'
    assert (await client.get(f"/Patient/{res_id}", headers={"If-None-Match": '"1"'})).status_code == 304
    await client.put(f"/Patient/{res_id}", json={"resourceType": "Patient", "id": res_id})
    changed = await client.get(f"/Patient/{res_id}", headers={"If-None-Match": 'W/"1"'})
    assert changed.status_code == 200
    assert changed.headers["etag"] == 'W/"2"'
    assert changed.json()["meta"]["versionId"] == "2"


async def test_if_modified_since(client: httpx.AsyncClient) -> None:
    res_id, created = await _patient(client)
    modified = parsedate_to_datetime(created.headers["last-modified"])
    url = f"/Patient/{res_id}"

    same = await client.get(url, headers={"If-Modified-Since": created.headers["last-modified"]})
    assert same.status_code == 304
    assert same.content == b""
    later = format_datetime(modified + timedelta(hours=1), usegmt=True)
    assert (await client.get(url, headers={"If-Modified-Since": later})).status_code == 304
    earlier = format_datetime(modified - timedelta(seconds=1), usegmt=True)
    fresh = await client.get(url, headers={"If-Modified-Since": earlier})
    assert fresh.status_code == 200
    assert fresh.content == created.content
    # an unparseable date is ignored (RFC 9110 13.1.3)
    assert (await client.get(url, headers={"If-Modified-Since": "last tuesday"})).status_code == 200
    # If-None-Match takes precedence over If-Modified-Since
    both = await client.get(url, headers={"If-None-Match": 'W/"9"', "If-Modified-Since": later})
    assert both.status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2099 07:28:00 -0000",  # RFC 2822 "unknown zone": parsed without tzinfo
        "Wed, 21 Oct 2099 07:28:00",
        "Wed, 21 Oct 2099 07:28:00 +0800",
    ],
)
async def test_if_modified_since_in_other_date_forms(client: httpx.AsyncClient, value: str) -> None:
    res_id, _ = await _patient(client)
    response = await client.get(f"/Patient/{res_id}", headers={"If-Modified-Since": value})
    assert response.status_code == 304


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_prefer_return(client: httpx.AsyncClient, method: str) -> None:
    url = "/Patient" if method == "POST" else "/Patient/prefer-me"
    body = {"resourceType": "Patient", "id": "prefer-me"}
    status = 201

    minimal = await client.request(method, url, json=body, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == status
    assert minimal.content == b""
    assert minimal.headers["etag"] == 'W/"1"'
    assert "last-modified" in minimal.headers
    location = minimal.headers["location"]
    assert location.startswith("http://phix.test/fhir/Patient/") and location.endswith("/_history/1")
    if method == "PUT":
        status = 200
    else:
        url = location.removeprefix("http://phix.test/fhir").removesuffix("/_history/1")

    full = await client.request(
        "PUT", url, json={**body, "id": url.split("/")[-1]}, headers={"Prefer": "return=representation"}
    )
    assert full.status_code == 200
    assert full.json()["meta"]["versionId"] == "2"
    assert (await client.get(url)).content == full.content

    info = await client.request(
        "PUT", url, json={**body, "id": url.split("/")[-1]}, headers={"Prefer": "return=OperationOutcome"}
    )
    assert info.status_code == 200
    assert info.headers["etag"] == 'W/"3"'
    result = info.json()
    assert result["resourceType"] == "OperationOutcome"
    assert [(i["severity"], i["code"]) for i in result["issue"]] == [("information", "informational")]
    assert "version 3" in result["issue"][0]["diagnostics"]

    created_info = await client.post(
        "/Patient", json={"resourceType": "Patient"}, headers={"Prefer": "return=OperationOutcome"}
    )
    assert created_info.status_code == 201
    assert created_info.json()["resourceType"] == "OperationOutcome"
    assert "Created Patient/" in created_info.json()["issue"][0]["diagnostics"]
    assert created_info.headers["location"].endswith("/_history/1")

    default = await client.post(
        "/Patient", json={"resourceType": "Patient"}, headers={"Prefer": "respond-async"}
    )
    assert default.json()["resourceType"] == "Patient"  # no return preference: the resource


async def test_prefer_on_delete(client: httpx.AsyncClient) -> None:
    res_id, _ = await _patient(client)
    info = await client.delete(f"/Patient/{res_id}", headers={"Prefer": "return=OperationOutcome"})
    assert info.status_code == 200
    assert info.json()["issue"][0]["severity"] == "information"
    assert info.json()["issue"][0]["diagnostics"] == f"Deleted Patient/{res_id}"
    again = await client.delete(f"/Patient/{res_id}", headers={"Prefer": "return=OperationOutcome"})
    assert again.status_code == 200
    assert again.json()["issue"][0]["severity"] == "information"
