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


async def test_a_transactions_index_rows_are_written_together_and_searchable_within_it(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    """The index rows of a transaction's entries are written in one batch; entries that search
    (conditional references, conditional patch, GET) still see the earlier entries' writes."""
    mrn = {"system": "urn:test:mrn", "value": "TX-IDX-1"}
    patient = {
        "fullUrl": PATIENT_URN,
        "resource": {"resourceType": "Patient", "identifier": [mrn], "name": [{"family": "Zheng"}]},
        "request": {"method": "POST", "url": "Patient"},
    }
    # PUT entries run after POST entries: their conditional reference finds the new Patient.
    put_obs = {
        "resource": {
            "resourceType": "Observation",
            "id": "tx-idx-obs",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient?identifier=urn:test:mrn|TX-IDX-1"},
        },
        "request": {"method": "PUT", "url": "Observation/tx-idx-obs"},
    }
    patch = {
        "resource": {
            "resourceType": "Binary",
            "contentType": "application/json-patch+json",
            "data": "W3sib3AiOiAiYWRkIiwgInBhdGgiOiAiL2FjdGl2ZSIsICJ2YWx1ZSI6IHRydWV9XQ==",
        },
        "request": {"method": "PATCH", "url": "Patient?identifier=urn:test:mrn|TX-IDX-1"},
    }
    search = {
        "request": {"method": "GET", "url": "Observation?code=http://loinc.org|8867-4&subject.family=Zheng"}
    }
    response = await client.post("", json=tx(patient, put_obs, patch, search))
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created", "201 Created", "200 OK", "200 OK"]
    patient_id = entries[0]["response"]["location"].split("/")[1]
    obs = (await client.get("/Observation/tx-idx-obs")).json()
    assert obs["subject"]["reference"] == f"Patient/{patient_id}"
    assert [e["resource"]["id"] for e in entries[3]["resource"]["entry"]] == ["tx-idx-obs"]
    # after the commit: the Patient's rows are those of its last version (patched), once
    found = (
        await client.get("/Patient", params={"identifier": "urn:test:mrn|TX-IDX-1", "active": "true"})
    ).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [patient_id]
    rows = await conn.fetchval(
        "SELECT count(*) FROM search_token t JOIN resources r ON r.rid = t.rid"
        " WHERE r.res_id = $1 AND t.code = 'TX-IDX-1'",
        patient_id,
    )
    assert rows == 1


async def test_a_failed_transaction_leaves_no_index_rows(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    before = await count(conn, "search_token")
    bundle = tx(post_patient("Wu"), observation(PATIENT_URN), observation(PATIENT_URN, status="not-a-status"))
    response = await client.post("", json=bundle)
    assert response.status_code in (400, 422), response.text
    assert await count(conn, "search_token") == before
    assert await count(conn) == 0


async def test_batch_get_entries_search(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/Patient", json={"resourceType": "Patient", "name": [{"family": "Batchsearch"}]}
    )
    patient_id = created.json()["id"]
    bundle = tx(
        {"request": {"method": "GET", "url": "Patient?family=Batchsearch"}},
        {"request": {"method": "GET", "url": "Patient?unknown-parameter=1"}},
        kind="batch",
    )
    response = await client.post("", json=bundle)
    assert response.status_code == 200, response.text
    first, second = response.json()["entry"]
    assert first["response"]["status"] == "200 OK"
    assert first["resource"]["type"] == "searchset"
    assert [e["resource"]["id"] for e in first["resource"]["entry"]] == [patient_id]
    assert second["response"]["status"].startswith("400")
    assert second["response"]["outcome"]["resourceType"] == "OperationOutcome"
