"""Transaction and batch bundles: atomicity, ordering, urn:uuid rewriting, per-entry outcomes."""

from __future__ import annotations

import asyncpg
import httpx

PATIENT_URN = "urn:uuid:0c3d1f2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"


def tx(*entries: dict[str, object], kind: str = "transaction") -> dict[str, object]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post_patient(family: str = "林") -> dict[str, object]:
    return {
        "fullUrl": PATIENT_URN,
        "resource": {"resourceType": "Patient", "name": [{"family": family}]},
        "request": {"method": "POST", "url": "Patient"},
    }


def observation(subject: str, status: object = "final") -> dict[str, object]:
    return {
        "resource": {
            "resourceType": "Observation",
            "status": status,
            "code": {"text": "heart rate"},
            "subject": {"reference": subject},
        },
        "request": {"method": "POST", "url": "Observation"},
    }


async def count(conn: asyncpg.Connection, table: str = "resource_versions") -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def test_transaction_rewrites_urn_uuid_and_answers_in_entry_order(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    # The Observation comes first in the bundle but is processed after the POST of the Patient.
    bundle = tx(observation(PATIENT_URN), post_patient())
    response = await client.post("", json=bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    obs_location = body["entry"][0]["response"]["location"]
    patient_location = body["entry"][1]["response"]["location"]
    assert obs_location.startswith("Observation/") and patient_location.startswith("Patient/")
    assert body["entry"][1]["response"]["etag"] == 'W/"1"'
    obs = (await client.get(obs_location.rsplit("/_history", 1)[0])).json()
    patient_id = patient_location.split("/")[1]
    assert obs["subject"]["reference"] == f"Patient/{patient_id}"
    assert await count(conn) == 2


async def test_failed_entry_rolls_back_the_whole_transaction(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    bundle = tx(post_patient(), observation(PATIENT_URN, status=7))
    response = await client.post("", json=bundle)
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.status"]
    assert "Bundle.entry[1]" in outcome["issue"][0]["diagnostics"]
    assert await count(conn) == 0
    assert await count(conn, "resources") == 0


async def test_reference_to_missing_resource_is_409_and_nothing_is_written(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    response = await client.post("", json=tx(post_patient(), observation("Patient/does-not-exist")))
    assert response.status_code == 409
    issue = response.json()["issue"][0]
    assert issue["code"] == "not-found"
    assert issue["expression"] == ["Bundle.entry[1].resource.subject.reference"]
    assert await count(conn) == 0


async def test_unresolvable_urn_uuid_is_rejected(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    response = await client.post("", json=tx(observation("urn:uuid:99999999-9999-4999-8999-999999999999")))
    assert response.status_code == 400
    assert "matches no fullUrl" in response.json()["issue"][0]["diagnostics"]
    assert await count(conn) == 0


async def test_processing_order_delete_before_post_before_put(client: httpx.AsyncClient) -> None:
    await client.put("/Organization/o1", json={"resourceType": "Organization", "id": "o1", "name": "old"})
    bundle = tx(
        {
            "resource": {"resourceType": "Organization", "id": "o1", "name": "recreated"},
            "request": {"method": "PUT", "url": "Organization/o1"},
        },
        {"request": {"method": "DELETE", "url": "Organization/o1"}},
        {"request": {"method": "GET", "url": "Organization/o1"}},
    )
    response = await client.post("", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    # DELETE ran first (version 2, tombstone), then PUT (version 3), then GET saw version 3.
    assert entries[1]["response"]["status"] == "204 No Content"
    assert entries[0]["response"]["etag"] == 'W/"3"'
    assert entries[2]["resource"]["name"] == "recreated"


async def test_if_match_conflict_in_transaction_is_412_and_rolls_back(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    await client.put("/Organization/o2", json={"resourceType": "Organization", "id": "o2", "name": "a"})
    bundle = tx(
        post_patient(),
        {
            "resource": {"resourceType": "Organization", "id": "o2", "name": "b"},
            "request": {"method": "PUT", "url": "Organization/o2", "ifMatch": 'W/"5"'},
        },
    )
    response = await client.post("", json=bundle)
    assert response.status_code == 412
    assert await count(conn) == 1  # only the Organization created before


async def test_batch_entries_are_independent(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    bundle = tx(
        {
            "resource": {"resourceType": "Patient", "name": [{"family": "黄"}]},
            "request": {"method": "POST", "url": "Patient"},
        },
        observation("Patient/missing"),
        {"request": {"method": "GET", "url": "Patient/nobody"}},
        kind="batch",
    )
    response = await client.post("", json=bundle)
    assert response.status_code == 200
    entries = response.json()["entry"]
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"] == "409 Conflict"
    assert entries[1]["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert entries[2]["response"]["status"] == "404 Not Found"
    assert await count(conn) == 1


async def test_batch_entries_may_not_reference_each_other(client: httpx.AsyncClient) -> None:
    response = await client.post("", json=tx(post_patient(), observation(PATIENT_URN), kind="batch"))
    entries = response.json()["entry"]
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"].startswith("400")


async def test_bundle_shape_errors(client: httpx.AsyncClient) -> None:
    response = await client.post("", json={"resourceType": "Bundle", "type": "collection"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.type"]
    response = await client.post("", json=tx({"resource": {"resourceType": "Patient"}}))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]
    response = await client.post(
        "",
        json=tx(
            {"request": {"method": "PUT", "url": "Patient/1"}, "resource": {"resourceType": "Observation"}}
        ),
    )
    assert response.status_code == 400


async def test_patch_entry_with_binary_json_patch(client: httpx.AsyncClient) -> None:
    import base64

    await client.put("/Organization/o3", json={"resourceType": "Organization", "id": "o3", "name": "a"})
    patch = base64.b64encode(b'[{"op": "replace", "path": "/name", "value": "b"}]').decode()
    bundle = tx(
        {
            "resource": {
                "resourceType": "Binary",
                "contentType": "application/json-patch+json",
                "data": patch,
            },
            "request": {"method": "PATCH", "url": "Organization/o3"},
        }
    )
    response = await client.post("", json=bundle)
    assert response.status_code == 200, response.text
    assert (await client.get("/Organization/o3")).json()["name"] == "b"


async def test_prefer_representation_returns_resources(client: httpx.AsyncClient) -> None:
    response = await client.post("", json=tx(post_patient("郑")), headers={"Prefer": "return=representation"})
    entry = response.json()["entry"][0]
    assert entry["resource"]["name"][0]["family"] == "郑"
    assert entry["resource"]["meta"]["versionId"] == "1"
