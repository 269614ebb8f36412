"""Conditional create, update, patch and delete; conditional references; concurrency."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import orjson
import pytest

MRN = "https://fhir.putian.gov.cn/NamingSystem/ptsdyyy/mrn"


def patient(mrn: str, family: str = "陈") -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": family}],
    }


async def current_count(conn: asyncpg.Connection, res_type: str = "Patient") -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM resources WHERE res_type = $1 AND NOT deleted", res_type)
    )


async def test_conditional_create_zero_one_many(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    headers = {"If-None-Exist": f"identifier={MRN}|A1"}
    first = await client.post("/Patient", json=patient("A1"), headers=headers)
    assert first.status_code == 201
    again = await client.post("/Patient", json=patient("A1", "林"), headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["name"][0]["family"] == "陈"  # nothing was written
    await client.post("/Patient", json=patient("A2"))
    await client.post("/Patient", json=patient("A2"))
    many = await client.post(
        "/Patient", json=patient("A2"), headers={"If-None-Exist": f"identifier={MRN}|A2"}
    )
    assert many.status_code == 412
    assert many.json()["resourceType"] == "OperationOutcome"
    assert await current_count(conn) == 3


async def test_conditional_create_bad_criteria_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/Patient", json=patient("B"), headers={"If-None-Exist": "nonsense-param=1"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_concurrent_conditional_creates_make_one_resource(
    app: object, conn: asyncpg.Connection
) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir") as http:
        headers = {"If-None-Exist": f"identifier={MRN}|RACE"}
        results = await asyncio.gather(
            *(http.post("/Patient", json=patient("RACE"), headers=headers) for _ in range(8))
        )
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(201) == 1 and statuses.count(200) == 7
    assert len({r.json()["id"] for r in results}) == 1
    assert await current_count(conn) == 1


async def test_conditional_update_creates_updates_and_refuses_many(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    url = f"/Patient?identifier={MRN}|U1"
    created = await client.put(url, json=patient("U1"))
    assert created.status_code == 201
    updated = await client.put(url, json=patient("U1", "郑"))
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"
    wrong_id = await client.put(url, json={**patient("U1"), "id": "someone-else"})
    assert wrong_id.status_code == 400
    await client.post("/Patient", json=patient("U2"))
    await client.post("/Patient", json=patient("U2"))
    many = await client.put(f"/Patient?identifier={MRN}|U2", json=patient("U2"))
    assert many.status_code == 412
    assert await current_count(conn) == 3


async def test_conditional_update_as_create_keeps_client_id(client: httpx.AsyncClient) -> None:
    response = await client.put(
        f"/Patient?identifier={MRN}|U3", json={**patient("U3"), "id": "client-chosen"}
    )
    assert response.status_code == 201
    assert response.json()["id"] == "client-chosen"


async def test_conditional_patch(client: httpx.AsyncClient) -> None:
    await client.post("/Patient", json=patient("P1"))
    patch = b'[{"op": "add", "path": "/active", "value": true}]'
    headers = {"Content-Type": "application/json-patch+json"}
    ok = await client.patch(f"/Patient?identifier={MRN}|P1", content=patch, headers=headers)
    assert ok.status_code == 200 and ok.json()["active"] is True
    none = await client.patch(f"/Patient?identifier={MRN}|nobody", content=patch, headers=headers)
    assert none.status_code == 404


@pytest.mark.parametrize("multiple", [True, False])
async def test_conditional_delete_single_and_multiple(
    app: object, client: httpx.AsyncClient, conn: asyncpg.Connection, multiple: bool
) -> None:
    app.state.settings.fhir.conditional_delete_multiple = multiple  # type: ignore[attr-defined]
    for _ in range(3):
        await client.post("/Patient", json=patient("D1"))
    await client.post("/Patient", json=patient("D2"))
    response = await client.delete(f"/Patient?identifier={MRN}|D1")
    if multiple:
        assert response.status_code == 204
        assert await current_count(conn) == 1
    else:
        assert response.status_code == 412
        assert await current_count(conn) == 4
    single = await client.delete(f"/Patient?identifier={MRN}|D2")
    assert single.status_code == 204
    nothing = await client.delete(f"/Patient?identifier={MRN}|none")
    assert nothing.status_code == 204


async def test_conditional_delete_limit(
    app: object, client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    app.state.conditional.delete_limit = 2  # type: ignore[attr-defined]
    for _ in range(3):
        await client.post("/Patient", json=patient("L"))
    response = await client.delete(f"/Patient?identifier={MRN}|L")
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "too-costly"
    assert await current_count(conn) == 3


async def test_transaction_conditional_entries_and_references(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    existing = (await client.post("/Patient", json=patient("T1"))).json()["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7f0c2a39-3c39-4d9c-9f5e-2d1b1d6c9a10",
                "resource": patient("T1", "黄"),
                "request": {"method": "PUT", "url": f"Patient?identifier={MRN}|T1"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": "urn:uuid:7f0c2a39-3c39-4d9c-9f5e-2d1b1d6c9a10"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "y"},
                    "subject": {"reference": f"Patient?identifier={MRN}|T1"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": patient("T2"),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={MRN}|T1"},
            },
        ],
    }
    response = await client.post("", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert entries[0]["response"]["location"].startswith(f"Patient/{existing}/_history/2")
    assert entries[3]["response"]["status"] == "200 OK"  # ifNoneExist matched
    subjects = await conn.fetch(
        "SELECT body FROM resources WHERE res_type = 'Observation'",
    )
    assert {orjson.loads(r["body"])["subject"]["reference"] for r in subjects} == {f"Patient/{existing}"}
    assert await current_count(conn) == 1


async def test_transaction_conditional_reference_without_match_fails(client: httpx.AsyncClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "y"},
                    "subject": {"reference": f"Patient?identifier={MRN}|ghost"},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    response = await client.post("", json=bundle)
    assert response.status_code == 404
    assert "Bundle.entry[0]" in response.json()["issue"][0]["diagnostics"]
