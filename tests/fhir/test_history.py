"""history at instance, type and system level: ``_count``, ``_since``, ``_at`` and next links."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _minutes(n: float) -> str:
    return (T0 + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def ticking_clock(app: FastAPI) -> Iterator[None]:
    """Every write happens one minute after the previous one, from T0 on."""
    moments = (T0 + timedelta(minutes=i) for i in range(10_000))
    saved = app.state.clock
    app.state.clock = lambda: next(moments)
    yield
    app.state.clock = saved


async def _all_pages(client: httpx.AsyncClient, url: str, **params: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    response = await client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["resourceType"] == "Bundle" and page["type"] == "history"
        entries.extend(page.get("entry", []))
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            return entries
        response = await client.get(following[0])


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["fullUrl"], entry["response"]["etag"]


async def _four_versions(client: httpx.AsyncClient) -> tuple[str, list[bytes]]:
    """POST at T0, PUT at T0+1m, PATCH at T0+2m, DELETE at T0+3m; the bodies written."""
    created = await client.post("/Patient", json={"resourceType": "Patient", "gender": "male"})
    res_id = created.json()["id"]
    updated = await client.put(f"/Patient/{res_id}", json={"resourceType": "Patient", "id": res_id})
    patched = await client.patch(
        f"/Patient/{res_id}",
        content=b'[{"op": "add", "path": "/active", "value": true}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert (await client.delete(f"/Patient/{res_id}")).status_code == 204
    return res_id, [created.content, updated.content, patched.content]


@pytest.mark.usefixtures("ticking_clock")
async def test_instance_history(client: httpx.AsyncClient) -> None:
    res_id, bodies = await _four_versions(client)
    response = await client.get(f"/Patient/{res_id}/_history")
    assert response.status_code == 200
    history = response.json()
    assert history["total"] == 4
    assert history["link"] == [
        {"relation": "self", "url": f"http://phix.test/fhir/Patient/{res_id}/_history"}
    ]
    full_url = f"http://phix.test/fhir/Patient/{res_id}"
    expected_requests = [
        ({"method": "DELETE", "url": f"Patient/{res_id}"}, "204 No Content", 4),
        ({"method": "PATCH", "url": f"Patient/{res_id}"}, "200 OK", 3),
        ({"method": "PUT", "url": f"Patient/{res_id}"}, "200 OK", 2),
        ({"method": "POST", "url": "Patient"}, "201 Created", 1),
    ]
    for entry, (request, status, version) in zip(history["entry"], expected_requests, strict=True):
        assert entry["fullUrl"] == full_url
        assert entry["request"] == request
        assert entry["response"] == {
            "status": status,
            "etag": f'W/"{version}"',
            "lastModified": _minutes(version - 1).replace("Z", ".000000Z"),
        }
        if version < 4:
            assert entry["resource"] == orjson.loads(bodies[version - 1])
        else:
            assert "resource" not in entry

    paged = await _all_pages(client, f"/Patient/{res_id}/_history", _count="1")
    assert paged == history["entry"]


@pytest.mark.usefixtures("ticking_clock")
async def test_since_and_at(client: httpx.AsyncClient) -> None:
    res_id, _ = await _four_versions(client)
    other = (
        await client.post(
            "/Observation", json={"resourceType": "Observation", "status": "final", "code": {"text": "BP"}}
        )
    ).json()  # T0+4m
    url = f"/Patient/{res_id}/_history"

    async def versions(target: str, **params: str) -> list[str]:
        response = await client.get(target, params=params)
        assert response.status_code == 200, response.text
        return [e["response"]["etag"] for e in response.json().get("entry", [])]

    assert await versions(url, _since=_minutes(1)) == ['W/"4"', 'W/"3"', 'W/"2"']
    assert (await client.get(url, params={"_since": _minutes(1)})).json()["total"] == 3
    assert await versions(url, _since=_minutes(3.5)) == []
    assert await versions(url, _since="2024-03-01") == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert await versions("/_history", _since=_minutes(3)) == ['W/"1"', 'W/"4"']
    assert await versions("/Observation/_history", _since=_minutes(3)) == ['W/"1"']

    # _at: the versions that were current at some moment of the given period
    assert await versions(url, _at=_minutes(1.5)) == ['W/"2"']
    assert await versions(url, _at="2024-03-01T08:01:00Z") == ['W/"2"']
    assert await versions(url, _at="2024-03-01T08:02") == ['W/"3"']  # minute precision
    assert await versions(url, _at="2024-03-01T08:10:00+08:00") == []  # before T0 (UTC 00:10)
    assert await versions(url, _at="2024-03-01") == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert await versions(url, _at="2025") == ['W/"4"']  # the tombstone is what was current
    assert await versions("/_history", _at="2025") == ['W/"1"', 'W/"4"']
    assert await versions(f"/Observation/{other['id']}/_history", _at=_minutes(3.5)) == []


@pytest.mark.parametrize(
    ("params", "diagnostics"),
    [
        ({"_count": "-1"}, "_count"),
        ({"_count": "many"}, "_count"),
        ({"_since": "yesterday"}, "_since"),
        ({"_since": "2024-13-01"}, "_since"),
        ({"_at": "2024-02-30"}, "_at"),
        ({"_cursor": "abc"}, "cursor"),
        ({"name": "林"}, "Unknown history parameter"),
    ],
)
async def test_bad_history_parameters(
    shared_client: httpx.AsyncClient, outcome: Any, params: dict[str, str], diagnostics: str
) -> None:
    for url in ("/_history", "/Patient/_history"):
        response = await shared_client.get(url, params=params)
        outcome(response, 400, {"code": "invalid", "diagnostics": diagnostics})


async def test_history_of_unknown_things(client: httpx.AsyncClient, outcome: Any) -> None:
    outcome(await client.get("/Patient/nobody/_history"), 404, {"code": "not-found"})
    outcome(await client.get("/Unicorn/_history"), 404, {"code": "not-supported"})
    outcome(await client.get("/Unicorn/1/_history"), 404, {"code": "not-supported"})
    empty = await client.get("/Patient/_history")
    assert empty.status_code == 200
    assert empty.json()["entry"] == []
    assert [link["relation"] for link in empty.json()["link"]] == ["self"]


async def test_count_zero_and_count_limits(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.post("/Patient", json={"resourceType": "Patient"})).status_code == 201
    none = (await client.get("/Patient/_history", params={"_count": "0"})).json()
    assert none["entry"] == []
    two = (await client.get("/Patient/_history", params={"_count": "2"})).json()
    assert len(two["entry"]) == 2
    next_url = next(link["url"] for link in two["link"] if link["relation"] == "next")
    assert "_count=2" in next_url and "_cursor=" in next_url
    rest = (await client.get(next_url)).json()
    assert len(rest["entry"]) == 1
    assert [link["relation"] for link in rest["link"]] == ["self"]


@pytest.mark.parametrize(("level", "count"), [("/Patient/_history", "7"), ("/_history", "9")])
async def test_paging_while_another_client_writes(
    app: FastAPI, client: httpx.AsyncClient, level: str, count: str
) -> None:
    """Following next links to the end yields every version that existed when paging began,
    exactly once, however many writes land in between."""
    for i in range(25):
        created = (
            await client.post("/Patient", json={"resourceType": "Patient", "birthDate": "1970"})
        ).json()
        if i % 3 == 0:
            await client.put(f"/Patient/{created['id']}", json={**created, "active": True})
        if i % 5 == 0:
            await client.post(
                "/Observation",
                json={"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}},
            )
    snapshot = await _all_pages(client, level, _count="1000")
    assert len(snapshot) == (25 + 9 + 5 if level == "/_history" else 25 + 9)

    writes = 0
    progressed = asyncio.Event()
    start = asyncio.Event()

    async def writer() -> None:
        nonlocal writes
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir") as other:
            await start.wait()
            for n in range(60):
                if n % 2:
                    response = await other.post("/Patient", json={"resourceType": "Patient"})
                else:
                    _, res_type, res_id = snapshot[n % len(snapshot)]["fullUrl"].rsplit("/", 2)
                    body = {"resourceType": res_type, "id": res_id, "status": "final", "code": {"text": "x"}}
                    if res_type == "Patient":
                        body = {"resourceType": res_type, "id": res_id, "gender": "other"}
                    response = await other.put(f"/{res_type}/{res_id}", json=body)
                assert response.status_code in (200, 201), response.text
                writes += 1
                progressed.set()
                await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    seen: list[dict[str, Any]] = []
    response = await client.get(level, params={"_count": count})
    pages = 0
    while True:
        page = response.json()
        pages += 1
        seen.extend(page["entry"])
        start.set()
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        progressed.clear()
        await progressed.wait()  # at least one write lands between two pages
        response = await client.get(following[0])
        assert response.status_code == 200
    await task
    assert pages >= 4
    assert writes == 60
    keys = [_key(e) for e in seen]
    assert len(keys) == len(set(keys)), "an entry was repeated"
    assert keys == [_key(e) for e in snapshot], "an entry was skipped, added or reordered"
