"""The versioned store, checked in its tables: every write a version, the current row in step,
tombstones, server-set meta, atomic writes, concurrent writers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from phix.errors import Category, FhirError
from phix.storage.context import RequestContext
from phix.storage.repository import Repository, Version


async def _versions(conn: asyncpg.Connection, res_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT seq, rid, res_type, res_id, version, last_updated, method, deleted, body"
        " FROM resource_versions WHERE res_id = $1 ORDER BY seq",
        res_id,
    )


async def _gaps(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Resources whose versions are not exactly 1..n with n the current version."""
    return await conn.fetch(
        "SELECT r.res_type, r.res_id, r.version, count(v.*) AS n, min(v.version) AS lo, max(v.version) AS hi"
        " FROM resources r LEFT JOIN resource_versions v ON v.rid = r.rid"
        " GROUP BY r.rid HAVING count(v.*) <> r.version OR min(v.version) <> 1 OR max(v.version) <> r.version"
    )


async def test_each_write_is_a_version_row_and_the_current_row_follows(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    created = await client.post("/Patient", json={"resourceType": "Patient", "gender": "male"})
    res_id = created.json()["id"]
    updated = await client.put(f"/Patient/{res_id}", json={"resourceType": "Patient", "id": res_id})
    patched = await client.patch(
        f"/Patient/{res_id}",
        content=b'[{"op": "add", "path": "/active", "value": true}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    responses = [created, updated, patched]

    rows = await _versions(conn, res_id)
    assert [(r["version"], r["method"], r["deleted"]) for r in rows] == [
        (1, "POST", False),
        (2, "PUT", False),
        (3, "PATCH", False),
    ]
    assert len({r["rid"] for r in rows}) == 1
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    for row, response in zip(rows, responses, strict=True):
        assert row["body"] == response.content  # bytes as answered
        meta = response.json()["meta"]
        assert meta["versionId"] == str(row["version"])
        assert datetime.fromisoformat(meta["lastUpdated"].replace("Z", "+00:00")) == row["last_updated"]
    current = await conn.fetchrow("SELECT * FROM resources WHERE res_id = $1", res_id)
    assert (current["version"], current["deleted"], current["body"]) == (3, False, patched.content)
    assert current["last_updated"] == rows[-1]["last_updated"]

    assert (await client.delete(f"/Patient/{res_id}")).status_code == 204
    tombstone = (await _versions(conn, res_id))[-1]
    assert (tombstone["version"], tombstone["method"], tombstone["deleted"], tombstone["body"]) == (
        4,
        "DELETE",
        True,
        None,
    )
    current = await conn.fetchrow("SELECT * FROM resources WHERE res_id = $1", res_id)
    assert (current["version"], current["deleted"], current["body"]) == (4, True, None)
    assert await _gaps(conn) == []


async def test_repository_sets_meta_from_its_clock(conn: asyncpg.Connection) -> None:
    moment = datetime(2025, 2, 14, 9, 30, 15, 123456, tzinfo=UTC)
    repo = Repository(conn, RequestContext(), (), lambda: moment)
    sent = {
        "resourceType": "Patient",
        "id": "ignored",
        "meta": {"versionId": "9", "lastUpdated": "2000-01-01T00:00:00Z"},
    }
    version = await repo.create("Patient", sent)
    stored = orjson.loads(version.body or b"")
    assert stored["id"] == version.res_id != "ignored"
    assert stored["meta"] == {"versionId": "1", "lastUpdated": "2025-02-14T09:30:15.123456Z"}
    assert list(stored)[:3] == ["resourceType", "id", "meta"]
    assert sent["meta"]["versionId"] == "9"  # the caller's dict is not modified
    assert await conn.fetchval("SELECT last_updated FROM resources") == moment
    read = await repo.read("Patient", version.res_id)
    assert read.body == version.body


class _Failing:
    def __init__(self) -> None:
        self.calls = 0

    async def after_write(self, conn: asyncpg.Connection, version: Version, resource: Any) -> None:
        self.calls += 1
        # the rows are there inside the transaction ...
        assert await conn.fetchval("SELECT count(*) FROM resource_versions WHERE rid = $1", version.rid) >= 1
        raise FhirError(Category.CONFLICT, "a listener refuses")


async def test_a_failing_listener_rolls_the_whole_write_back(conn: asyncpg.Connection, db_url: str) -> None:
    listener = _Failing()
    other = await asyncpg.connect(db_url)
    try:
        plain = Repository(other, RequestContext())
        first = await plain.create("Patient", {"resourceType": "Patient"})
        before = await conn.fetch("SELECT * FROM resource_versions ORDER BY seq")
        failing = Repository(other, RequestContext(), [listener])
        with pytest.raises(FhirError):
            await failing.create("Patient", {"resourceType": "Patient"})
        with pytest.raises(FhirError):
            await failing.update("Patient", first.res_id, {"resourceType": "Patient", "id": first.res_id})
        with pytest.raises(FhirError):
            await failing.update("Patient", "new-id", {"resourceType": "Patient", "id": "new-id"})
        with pytest.raises(FhirError):
            await failing.delete("Patient", first.res_id)
        assert listener.calls == 4
        # ... and gone afterwards
        assert await conn.fetch("SELECT * FROM resource_versions ORDER BY seq") == before
        assert await conn.fetchval("SELECT count(*) FROM resources") == 1
        assert (await plain.read("Patient", first.res_id)).version == 1
        assert not other.is_in_transaction()
    finally:
        await other.close()


async def test_concurrent_updates_of_one_resource(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    created = (await client.post("/Patient", json={"resourceType": "Patient"})).json()
    res_id = created["id"]
    body = {"resourceType": "Patient", "id": res_id}
    responses = await asyncio.gather(*(client.put(f"/Patient/{res_id}", json=body) for _ in range(16)))
    assert [r.status_code for r in responses] == [200] * 16
    assert sorted(int(r.json()["meta"]["versionId"]) for r in responses) == list(range(2, 18))
    assert [r["version"] for r in await _versions(conn, res_id)] == list(range(1, 18))
    assert await _gaps(conn) == []


async def test_concurrent_update_as_create_of_one_new_id(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    body = {"resourceType": "Patient", "id": "raced"}
    responses = await asyncio.gather(*(client.put("/Patient/raced", json=body) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert sorted(r.headers["etag"] for r in responses) == sorted(f'W/"{n}"' for n in range(1, 9))
    assert await conn.fetchval("SELECT count(*) FROM resources") == 1
    assert await _gaps(conn) == []


async def test_concurrent_mixed_writers(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    ids = [(await client.post("/Patient", json={"resourceType": "Patient"})).json()["id"] for _ in range(4)]

    async def writer(n: int) -> list[int]:
        statuses = []
        for i in range(6):
            res_id = ids[(n + i) % len(ids)]
            if (n + i) % 3 == 0:
                response = await client.patch(
                    f"/Patient/{res_id}",
                    content=orjson.dumps([{"op": "add", "path": "/active", "value": bool(i % 2)}]),
                    headers={"Content-Type": "application/json-patch+json"},
                )
            elif (n + i) % 3 == 1:
                response = await client.put(
                    f"/Patient/{res_id}", json={"resourceType": "Patient", "id": res_id}
                )
            else:
                response = await client.post("/Patient", json={"resourceType": "Patient"})
            statuses.append(response.status_code)
        return statuses

    results = await asyncio.gather(*(writer(n) for n in range(6)))
    assert all(status in (200, 201) for statuses in results for status in statuses)
    assert await _gaps(conn) == []
    total = await conn.fetchval("SELECT count(*) FROM resource_versions")
    assert total == 4 + 36


async def test_delete_of_nothing_writes_nothing(conn: asyncpg.Connection) -> None:
    repo = Repository(conn, RequestContext())
    assert await repo.delete("Patient", "nobody") is None
    created = await repo.create("Patient", {"resourceType": "Patient"})
    tombstone = await repo.delete("Patient", created.res_id)
    assert tombstone is not None and tombstone.deleted and tombstone.body is None and tombstone.version == 2
    assert await repo.delete("Patient", created.res_id) is None
    assert await conn.fetchval("SELECT count(*) FROM resource_versions") == 2
    with pytest.raises(FhirError) as gone:
        await repo.read("Patient", created.res_id)
    assert gone.value.category is Category.GONE
    with pytest.raises(FhirError) as stale:
        await repo.update("Patient", created.res_id, {"resourceType": "Patient"}, if_match=1)
    assert stale.value.category is Category.PRECONDITION
    assert await conn.fetchval("SELECT count(*) FROM resource_versions") == 2


class _Recording:
    """A listener without ``after_write_many``: called once per written version."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    async def after_write(self, conn: asyncpg.Connection, version: Version, resource: Any) -> None:
        self.seen.append((version.res_id, version.version))


async def test_put_many_creates_updates_and_revives_in_one_batch(
    app: Any, client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    kept = (await client.post("/Patient", json={"resourceType": "Patient", "gender": "male"})).json()["id"]
    gone = (await client.post("/Patient", json={"resourceType": "Patient"})).json()["id"]
    assert (await client.delete(f"/Patient/{gone}")).status_code in (200, 204)
    recording = _Recording()
    repo = Repository(conn, RequestContext(), [*app.state.listeners, recording])
    items = [
        ("batch-new", {"resourceType": "Patient", "name": [{"family": "Lin"}]}),
        (kept, {"resourceType": "Patient", "name": [{"family": "Chen"}]}),
        (gone, {"resourceType": "Patient", "name": [{"family": "Huang"}]}),
    ]
    versions = await repo.put_many("Patient", items)

    assert [(v.res_id, v.version, v.deleted, v.method) for v in versions] == [
        ("batch-new", 1, False, "PUT"),
        (kept, 2, False, "PUT"),
        (gone, 3, False, "PUT"),
    ]
    assert sorted(recording.seen) == sorted((v.res_id, v.version) for v in versions)
    assert await _gaps(conn) == []
    for version, (res_id, sent) in zip(versions, items, strict=True):
        read = await client.get(f"/Patient/{res_id}")
        assert read.status_code == 200
        assert read.json()["name"] == sent["name"]
        assert read.json()["meta"]["versionId"] == str(version.version)
        assert orjson.loads(version.body or b"") == read.json()
    # the search index listener wrote every version's rows in the batch (new and replaced)
    for family, res_id in [("Lin", "batch-new"), ("Chen", kept), ("Huang", gone)]:
        found = (await client.get("/Patient", params={"family": family})).json()
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [res_id]
    males = (await client.get("/Patient", params={"gender": "male"})).json()
    assert males.get("entry", []) == []  # the replaced version's rows are gone


async def test_put_many_is_atomic_when_a_reference_is_missing(
    app: Any, client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    before = await conn.fetch("SELECT * FROM resource_versions ORDER BY seq")
    repo = Repository(conn, RequestContext(), app.state.listeners)
    items = [
        ("ok-1", {"resourceType": "Patient"}),
        ("bad-1", {"resourceType": "Patient", "generalPractitioner": [{"reference": "Practitioner/none"}]}),
    ]
    with pytest.raises(FhirError) as raised:
        await repo.put_many("Patient", items)
    assert raised.value.category == Category.CONFLICT
    assert await conn.fetch("SELECT * FROM resource_versions ORDER BY seq") == before
    assert await conn.fetchval("SELECT count(*) FROM resources WHERE res_id IN ('ok-1', 'bad-1')") == 0


async def test_put_many_validates_and_refuses_duplicate_ids(conn: asyncpg.Connection) -> None:
    repo = Repository(conn, RequestContext())
    with pytest.raises(FhirError):
        await repo.put_many("Patient", [("v-1", {"resourceType": "Patient", "gender": 5})])
    with pytest.raises(ValueError):
        await repo.put_many("Patient", [("d-1", {"resourceType": "Patient"})] * 2)
    assert await repo.put_many("Patient", []) == []
    assert await conn.fetchval("SELECT count(*) FROM resources") == 0
