"""Linking on write: residents, golden records, deferred linking, concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from phix.mpi.config import default_model
from phix.mpi.features import GOLDEN_TAG_CODE, GOLDEN_TAG_SYSTEM
from phix.mpi.linkage import MpiListener

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


async def test_a_mistyped_birth_year_without_id_or_phone_still_finds_the_resident(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    """From the demo sample: a township hospital typed 2031 for 2021 and recorded no resident ID
    and no phone. Name and birth year shared no blocking key with the child's other records."""
    home = "福建省莆田市涵江区江口镇小亭村73号"
    rid = resident_id("2021-10-09", 46)
    a = await create(client, patient("林", "可馨", birth="2021-10-09", rid=rid, mrn="K1", address=home))
    b = await create(client, patient("林", "可馨", birth="2031-10-09", org="pthjyy", mrn="K2", address=home))
    links = await wait_linked(conn, [a, b])
    review = await conn.fetchval(
        "SELECT count(*) FROM mpi_review WHERE patient_id = $1 AND status = 'open'", b
    )
    # linked, or at least put before a steward with the child as the candidate
    assert links[a] == links[b] or review == 1


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


async def test_a_burst_linked_by_two_servers_workers_makes_one_resident_per_person(
    settings: Any, conn: asyncpg.Connection, monkeypatch: Any
) -> None:
    """The default (queued) linking with two server processes' workers taking small batches at
    once: records of one person land in different batches and must still make one resident."""
    from contextlib import AsyncExitStack

    from phix import app as app_module

    from .conftest import DOMAINS

    monkeypatch.setattr(app_module, "DOMAINS", DOMAINS)
    queued = settings.model_copy(update={"mpi": settings.mpi.model_copy(update={"linking": "async"})})
    people = [
        ("黄", "志明", "1975-11-30", 31),
        ("林", "秀英", "1982-03-14", 42),
        ("陈", "建华", "1990-07-01", 53),
    ]
    orgs = ["ptsdyyy", "ptxyfsyy", "ptszyy", "pthjyy", "ptsdeyy", "xyxyy"]
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            application = app_module.create_app(queued)
            await stack.enter_async_context(application.router.lifespan_context(application))
            engine = application.state.mpi
            engine.model = engine.model.model_copy(
                update={"linking": engine.model.linking.model_copy(update={"worker_batch": 2})}
            )
            transport = httpx.ASGITransport(app=application)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir")
                )
            )
        bodies = [
            (
                family,
                patient(family, given, birth=birth, rid=resident_id(birth, seq), org=org, mrn=f"B{seq}{n}"),
            )
            for family, given, birth, seq in people
            for n, org in enumerate(orgs)
        ]
        ids = await asyncio.gather(*(create(clients[n % 2], body) for n, (_, body) in enumerate(bodies)))
        links = await wait_linked(conn, list(ids), timeout=30)
    residents: dict[str, set[str]] = {}
    for (family, _), pid in zip(bodies, ids, strict=True):
        residents.setdefault(family, set()).add(links[pid])
    assert {family: len(golden) for family, golden in residents.items()} == {"黄": 1, "林": 1, "陈": 1}
    # never split and joined again afterwards: three residents were ever made
    assert await conn.fetchval("SELECT count(*) FROM mpi_golden") == 3


async def test_transaction_bundle_links_its_patients(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    rid = resident_id("1962-02-03", 41)
    bodies = [
        patient("郑", "国强", gender="male", birth="1962-02-03", rid=rid, org="ptsdyyy", mrn="T1"),
        patient(
            "Zheng",
            "Guoqiang",
            gender="male",
            birth="1962-02-03",
            rid=rid[:6] + rid[8:17],
            org="ptszyy",
            mrn="T2",
        ),
    ]
    entries = [
        {
            "fullUrl": f"urn:uuid:0000000{n}-0000-4000-8000-000000000000",
            "resource": body,
            "request": {"method": "POST", "url": "Patient"},
        }
        for n, body in enumerate(bodies)
    ]
    response = await client.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert response.status_code == 200, response.text
    ids = [e["response"]["location"].split("/")[1] for e in response.json()["entry"]]
    links = await wait_linked(conn, ids)
    assert len(set(links.values())) == 1


async def test_by_default_writes_are_queued_and_the_worker_links_them(
    app: Any, client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    assert default_model().linking.mode == "async"
    (listener,) = [li for li in app.state.listeners if isinstance(li, MpiListener)]
    listener.mode = None  # the test settings ask for sync linking; use the packaged model's mode
    rid = resident_id("1990-09-09", 52)
    a = await create(client, patient("林", "婷婷", birth="1990-09-09", rid=rid, org="ptsdyyy", mrn="Q1"))
    status = (await client.get(f"/Patient/{a}/$mpi-status")).json()
    assert status["parameter"][0] == {"name": "state", "valueString": "pending"} or await conn.fetchval(
        "SELECT golden_id FROM mpi_record WHERE patient_id = $1", a
    )
    b = await create(client, patient("林", "婷婷", birth="1990-09-09", rid=rid, org="ptszyy", mrn="Q2"))
    links = await wait_linked(conn, [a, b])
    assert links[a] == links[b]


async def test_deleting_sources_updates_and_retires_the_resident(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    rid = resident_id("1970-07-07", 61)
    a = await create(
        client, patient("吴", "建华", gender="male", birth="1970-07-07", rid=rid, org="ptsdyyy", mrn="D1")
    )
    b = await create(
        client, patient("吴", "建华", gender="male", birth="1970-07-07", rid=rid, org="ptszyy", mrn="D2")
    )
    golden = (await wait_linked(conn, [a, b]))[a]
    assert (await client.delete(f"/Patient/{b}")).status_code in (200, 204)
    body = (await client.get(f"/Patient/{golden}")).json()
    assert [x["other"]["reference"] for x in body["link"]] == [f"Patient/{a}"]
    assert (await client.delete(f"/Patient/{a}")).status_code in (200, 204)
    assert (await client.get(f"/Patient/{golden}")).json()["active"] is False
    assert await conn.fetchval("SELECT status FROM mpi_golden WHERE golden_id = $1", golden) == "retired"
    actions = [r["action"] for r in await conn.fetch("SELECT action FROM mpi_event ORDER BY seq")]
    assert actions == ["new-resident", "link", "delete", "delete"]


async def test_an_update_that_now_names_someone_else_moves_the_record(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    rid1, rid2 = resident_id("1985-03-03", 71), resident_id("1960-06-06", 73, "350322")
    a = await create(
        client, patient("方", "明", gender="male", birth="1985-03-03", rid=rid1, org="ptsdyyy", mrn="U1")
    )
    c = await create(
        client, patient("许", "国平", gender="male", birth="1960-06-06", rid=rid2, org="ptszyy", mrn="U3")
    )
    wrong = await create(
        client,
        patient("许", "国平", gender="male", birth="1960-06-06", org="pthjyy", mrn="U2", phone="13800000001"),
    )
    links = await wait_linked(conn, [a, c, wrong])
    # a provisional resident of its own (only a possible match) until the clerk fixes the record
    body = (await client.get(f"/Patient/{wrong}")).json()
    body["identifier"].append({"system": "urn:oid:2.16.156.10011.1.1", "value": rid2})
    assert (await client.put(f"/Patient/{wrong}", json=body)).status_code == 200
    moved = await wait_linked(conn, [wrong])
    assert moved[wrong] == links[c]
    if links[wrong] != links[c]:
        assert (
            await conn.fetchval("SELECT status FROM mpi_golden WHERE golden_id = $1", links[wrong])
            == "merged"
        )


async def test_odd_patients_are_stored_and_linked_never_a_500(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    odd: list[dict[str, Any]] = [
        {"resourceType": "Patient"},
        {"resourceType": "Patient", "birthDate": "1980", "name": [{"text": "🙂"}]},
        {"resourceType": "Patient", "name": [{"family": "·", "given": [""]}], "gender": "unknown"},
        {"resourceType": "Patient", "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "ABC"}]},
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "１２３"}],
        },
        {
            "resourceType": "Patient",
            "identifier": [{"system": "https://fhir.putian.gov.cn/NamingSystem/x/mrn", "value": " "}],
        },
        {
            "resourceType": "Patient",
            "telecom": [{"system": "phone", "value": "+86"}, {"system": "email", "value": "a@b"}],
        },
        {
            "resourceType": "Patient",
            "address": [{"line": ["莆田市"]}, {"text": "   "}],
            "name": [{"given": ["伟"]}],
        },
        {
            "resourceType": "Patient",
            "name": [{"family": "Ō'Brien-Smith", "given": ["Zoë"]}],
            "birthDate": "2020-02",
        },
    ]
    ids = []
    for body in odd:
        response = await client.post("/Patient", json=body)
        assert response.status_code in (201, 422), response.text  # 422: not valid FHIR; never a 500
        if response.status_code == 201:
            ids.append(response.json()["id"])
    links = await wait_linked(conn, ids)
    assert len(links) == len(ids) >= len(odd) - 2
