from __future__ import annotations

import httpx


async def test_search_by_family_and_token(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/Patient",
        json={"resourceType": "Patient", "name": [{"family": "Chén", "given": ["Ming"]}], "gender": "male"},
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    res = await client.get("/Patient", params={"family": "chen", "gender": "male"})
    assert res.status_code == 200, res.text
    bundle = res.json()
    assert bundle["type"] == "searchset"
    assert [e["resource"]["id"] for e in bundle["entry"]] == [pid]
