"""read, vread, create, update (incl. update-as-create) and delete over a sample of resource types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

BASE = "http://phix.test/fhir"
SAMPLE_TYPES = [
    "Patient",
    "Observation",
    "Practitioner",
    "Organization",
    "Encounter",
    "ImagingStudy",
    "ServiceRequest",
    "DiagnosticReport",
    "Bundle",
    "Binary",
]


@pytest.fixture
def client(shared_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """This module's cases share one app and database (see conftest); each works on its own ids."""
    return shared_client


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _assert_version_headers(response: httpx.Response, body: dict[str, Any]) -> None:
    version = body["meta"]["versionId"]
    assert response.headers["etag"] == f'W/"{version}"'
    last_updated = _instant(body["meta"]["lastUpdated"])
    assert parsedate_to_datetime(response.headers["last-modified"]) == last_updated.replace(microsecond=0)
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"


@pytest.mark.parametrize("res_type", SAMPLE_TYPES)
async def test_lifecycle_of_a_resource(client: httpx.AsyncClient, minimal: Any, res_type: str) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    created = await client.post(f"/{res_type}", json=minimal(res_type))
    assert created.status_code == 201, created.text
    body = created.json()
    res_id = body["id"]
    assert body["resourceType"] == res_type
    assert body["meta"]["versionId"] == "1"
    assert before <= _instant(body["meta"]["lastUpdated"]) <= datetime.now(UTC) + timedelta(seconds=1)
    assert created.headers["location"] == f"{BASE}/{res_type}/{res_id}/_history/1"
    _assert_version_headers(created, body)

    read = await client.get(f"/{res_type}/{res_id}")
    assert read.status_code == 200
    assert read.content == created.content  # served as stored
    _assert_version_headers(read, body)

    update = {**body, "meta": {"versionId": "41"}, "language": "zh-CN"}
    updated = await client.put(f"/{res_type}/{res_id}", json=update)
    assert updated.status_code == 200, updated.text
    new = updated.json()
    assert new["meta"]["versionId"] == "2"  # the client's versionId is ignored
    assert new["language"] == "zh-CN"
    assert updated.headers["content-location"] == f"{BASE}/{res_type}/{res_id}/_history/2"
    assert "location" not in updated.headers
    _assert_version_headers(updated, new)

    first = await client.get(f"/{res_type}/{res_id}/_history/1")
    assert first.status_code == 200
    assert first.content == created.content
    _assert_version_headers(first, body)
    second = await client.get(f"/{res_type}/{res_id}/_history/2")
    assert second.content == updated.content
    assert (await client.get(f"/{res_type}/{res_id}")).content == updated.content

    deleted = await client.delete(f"/{res_type}/{res_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert deleted.headers["etag"] == 'W/"3"'
    gone = await client.get(f"/{res_type}/{res_id}")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert (await client.get(f"/{res_type}/{res_id}/_history/2")).content == updated.content


async def test_create_ignores_client_id_and_server_meta(client: httpx.AsyncClient) -> None:
    sent = {
        "resourceType": "Patient",
        "id": "chosen-by-client",
        "meta": {
            "versionId": "7",
            "lastUpdated": "2001-01-01T00:00:00Z",
            "profile": ["http://example.org/StructureDefinition/putian-patient"],
        },
        "gender": "female",
    }
    created = await client.post("/Patient", json=sent)
    assert created.status_code == 201
    body = created.json()
    assert body["id"] != "chosen-by-client"
    assert body["meta"]["versionId"] == "1"
    assert _instant(body["meta"]["lastUpdated"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert body["meta"]["profile"] == sent["meta"]["profile"]  # other meta elements are kept
    assert body["gender"] == "female"
    assert (await client.get("/Patient/chosen-by-client")).status_code == 404


async def test_every_write_makes_a_new_version_even_when_unchanged(client: httpx.AsyncClient) -> None:
    created = (await client.put("/Patient/same", json={"resourceType": "Patient", "id": "same"})).json()
    stamps = [created["meta"]["lastUpdated"]]
    for expected in range(2, 5):
        response = await client.put("/Patient/same", json={"resourceType": "Patient", "id": "same"})
        assert response.status_code == 200
        assert response.json()["meta"]["versionId"] == str(expected)
        stamps.append(response.json()["meta"]["lastUpdated"])
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    history = (await client.get("/Patient/same/_history")).json()
    assert history["total"] == 4
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["4", "3", "2", "1"]


async def test_update_as_create_with_client_id(client: httpx.AsyncClient) -> None:
    first = await client.put("/Patient/pt-350304-1", json={"resourceType": "Patient", "id": "pt-350304-1"})
    assert first.status_code == 201
    assert first.headers["location"] == f"{BASE}/Patient/pt-350304-1/_history/1"
    assert first.headers["etag"] == 'W/"1"'
    assert first.json()["id"] == "pt-350304-1"
    second = await client.put("/Patient/pt-350304-1", json={"resourceType": "Patient", "id": "pt-350304-1"})
    assert second.status_code == 200
    assert second.headers["etag"] == 'W/"2"'
    history = (await client.get("/Patient/pt-350304-1/_history")).json()
    methods = [(e["request"]["method"], e["response"]["status"]) for e in history["entry"]]
    assert methods == [("PUT", "200 OK"), ("PUT", "201 Created")]


@pytest.mark.parametrize("bad_id", ["has space", "a" * 65, "under_score", "中文"])
async def test_update_with_an_invalid_id_is_refused(
    client: httpx.AsyncClient, outcome: Any, bad_id: str
) -> None:
    response = await client.put(f"/Patient/{bad_id}", json={"resourceType": "Patient", "id": bad_id})
    outcome(response, 400, {"code": "invalid", "diagnostics": "is not a valid FHIR id"})


async def test_read_and_vread_of_unknown_things(client: httpx.AsyncClient, outcome: Any) -> None:
    outcome(await client.get("/Patient/nope"), 404, {"code": "not-found", "diagnostics": "Patient/nope"})
    outcome(await client.get("/Patient/nope/_history/1"), 404, {"code": "not-found"})
    created = (await client.post("/Patient", json={"resourceType": "Patient"})).json()
    outcome(await client.get(f"/Patient/{created['id']}/_history/2"), 404, {"code": "not-found"})
    outcome(await client.get(f"/Patient/{created['id']}/_history/x"), 404, {"code": "not-found"})
    outcome(
        await client.get("/Unicorn/1"),
        404,
        {"code": "not-supported", "diagnostics": "Unknown resource type 'Unicorn'"},
    )
    # the same id under another type is another resource
    outcome(await client.get(f"/Observation/{created['id']}"), 404, {"code": "not-found"})


async def test_delete_is_a_tombstone_version(client: httpx.AsyncClient, outcome: Any) -> None:
    created = (await client.post("/Patient", json={"resourceType": "Patient"})).json()
    res_id = created["id"]
    first = await client.delete(f"/Patient/{res_id}")
    assert first.status_code == 204
    assert first.headers["etag"] == 'W/"2"'
    gone = await client.get(f"/Patient/{res_id}")
    outcome(gone, 410, {"code": "deleted", "diagnostics": f"Patient/{res_id} was deleted"})
    assert gone.headers["etag"] == 'W/"2"'
    outcome(await client.get(f"/Patient/{res_id}/_history/2"), 410, {"code": "deleted"})
    assert (await client.get(f"/Patient/{res_id}/_history/1")).json() == created

    again = await client.delete(f"/Patient/{res_id}")  # deleting twice is not an error ...
    assert again.status_code == 204
    history = (await client.get(f"/Patient/{res_id}/_history")).json()
    assert history["total"] == 2  # ... and writes no further version
    tombstone = history["entry"][0]
    assert "resource" not in tombstone
    assert tombstone["request"] == {"method": "DELETE", "url": f"Patient/{res_id}"}
    assert tombstone["response"]["etag"] == 'W/"2"'

    revived = await client.put(f"/Patient/{res_id}", json={"resourceType": "Patient", "id": res_id})
    assert revived.status_code in (200, 201)
    assert revived.json()["meta"]["versionId"] == "3"
    assert (await client.get(f"/Patient/{res_id}")).content == revived.content


async def test_delete_of_an_unknown_resource(client: httpx.AsyncClient, outcome: Any) -> None:
    response = await client.delete("/Patient/never-was")
    assert response.status_code == 204
    assert "etag" not in response.headers
    outcome(await client.get("/Patient/never-was"), 404, {"code": "not-found"})
    outcome(await client.delete("/Unicorn/1"), 404, {"code": "not-supported"})
