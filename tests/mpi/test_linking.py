"""Linking on write: residents, golden records, deferred linking, concurrency."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from phix.mpi.features import GOLDEN_TAG_CODE, GOLDEN_TAG_SYSTEM

from .conftest import create, wait_linked
from .factories import patient, resident_id

HOME = "福建省莆田市荔城区拱辰街道学园社区学园南街12号3栋401室"


async def test_same_person_from_two_hospitals_is_one_resident(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    rid = resident_id("1980-05-17", 22)
    a = await create(
        client, patient("陈", "丽华", rid=rid, org="ptsdyyy", mrn="A1", phone="13812345678", address=HOME)
    )
    b = await create(
        client, patient("陳", "麗華", rid=rid.lower(), org="ptxyfsyy", mrn="B7", phone="13812345678")
    )
    links = await wait_linked(conn, [a, b])
    assert links[a] == links[b]
    golden = (await client.get(f"/Patient/{links[a]}")).json()
    assert {"system": GOLDEN_TAG_SYSTEM, "code": GOLDEN_TAG_CODE} in [
        {k: t[k] for k in ("system", "code")} for t in golden["meta"]["tag"]
    ]
    assert sorted(link["other"]["reference"] for link in golden["link"]) == sorted(
        [f"Patient/{a}", f"Patient/{b}"]
    )
    assert golden["name"][0]["text"] == "陈丽华"
    assert golden["birthDate"] == "1980-05-17" and golden["gender"] == "female"
    assert golden["identifier"][0]["value"] == rid


async def test_different_people_are_different_residents(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    a = await create(client, patient("陈", "伟", gender="male", rid=resident_id("1980-05-17", 11)))
    b = await create(client, patient("陈", "伟", gender="male", rid=resident_id("1980-05-17", 13, "350322")))
    links = await wait_linked(conn, [a, b])
    assert links[a] != links[b]


async def test_clients_cannot_write_golden_records(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    a = await create(client, patient("林", "芳", rid=resident_id("1990-01-02", 20)))
    golden = (await wait_linked(conn, [a]))[a]
    body = (await client.get(f"/Patient/{golden}")).json()
    body["gender"] = "male"
    response = await client.put(f"/Patient/{golden}", json=body)
    assert response.status_code == 409
    assert response.json()["issue"][0]["code"] == "business-rule"
    assert (await client.delete(f"/Patient/{golden}")).status_code == 409


async def test_concurrent_registrations_make_one_resident(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    rid = resident_id("1975-11-30", 31)
    bodies = [
        patient(
            "黄",
            "志明",
            gender="male",
            birth="1975-11-30",
            rid=rid,
            org=org,
            mrn=f"M{n}",
            phone="13912345678",
        )
        for n, org in enumerate(["ptsdyyy", "ptxyfsyy", "ptszyy", "pthjyy", "ptsdeyy", "xyxyy"])
    ]
    ids = await asyncio.gather(*(create(client, b) for b in bodies))
    links = await wait_linked(conn, list(ids))
    assert len(set(links.values())) == 1
    assert await conn.fetchval("SELECT count(*) FROM mpi_golden WHERE status = 'active'") == 1
