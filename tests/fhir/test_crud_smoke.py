from __future__ import annotations

import httpx


async def test_create_then_read_returns_stored_bytes(client: httpx.AsyncClient) -> None:
    created = await client.post("/Patient", json={"resourceType": "Patient", "name": [{"family": "陈"}]})
    assert created.status_code == 201
    body = created.json()
    assert body["meta"]["versionId"] == "1"
    assert created.headers["etag"] == 'W/"1"'
    assert created.headers["location"].endswith(f"/Patient/{body['id']}/_history/1")
    read = await client.get(f"/Patient/{body['id']}")
    assert read.status_code == 200
    assert read.content == created.content
