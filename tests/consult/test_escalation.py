"""Deadlines and escalation with a controlled clock: overdue consults are reassigned or notified."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from phix.consult.codes import ESCALATION_EXTENSION

from .world import Clock, affiliation, consult_request, seed, task_of


async def _stat_consult(client: httpx.AsyncClient, **extra: Any) -> tuple[str, dict[str, Any]]:
    sr = (await client.post("/ServiceRequest", json=consult_request("stat", **extra))).json()
    task_id = task_of((await client.get("/$consult-timeliness")).json(), sr["id"])
    return task_id, (await client.get(f"/Task/{task_id}")).json()


async def test_overdue_stat_consult_is_reassigned_then_notified(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock
) -> None:
    task_id, task = await _stat_consult(cclient)
    first = task["owner"]["reference"].split("/")[1]
    assert task["restriction"]["period"]["end"] == "2026-03-02T01:30:00.000000Z"  # stat: 30 min
    scheduler = capp.state.consult_scheduler

    async with capp.state.db.pool.acquire() as conn:
        clock.advance(minutes=29)
        assert await scheduler.run_due(conn, clock()) == []  # not yet due
        clock.advance(minutes=2)
        done = await scheduler.run_due(conn, clock())
        assert [(e.task_id, e.action, e.from_role) for e in done] == [(task_id, "reassign", first)]
        assert await scheduler.run_due(conn, clock()) == []  # escalated once, not twice

    task = (await cclient.get(f"/Task/{task_id}")).json()
    second = "role-r2" if first == "role-r1" else "role-r1"
    assert task["status"] == "requested"
    assert task["owner"] == {"reference": f"PractitionerRole/{second}"}
    assert task["businessStatus"]["coding"][0]["code"] == "escalated"
    assert task["restriction"]["period"]["end"] == "2026-03-02T02:01:00.000000Z"  # new 30 min from 01:31
    assert task["extension"] == [
        {
            "url": ESCALATION_EXTENSION,
            "extension": [
                {"url": "at", "valueDateTime": "2026-03-02T01:31:00.000000Z"},
                {"url": "action", "valueCode": "reassign"},
                {"url": "missedDeadline", "valueDateTime": "2026-03-02T01:30:00.000000Z"},
                {"url": "from", "valueReference": {"reference": f"PractitionerRole/{first}"}},
                {"url": "to", "valueReference": {"reference": f"PractitionerRole/{second}"}},
            ],
        }
    ]
    assert "Overdue (due 2026-03-02T01:30:00.000000Z); reassigned" in task["note"][-1]["text"]

    # the second reader accepts but is late too: max_escalations not reached, but both readers
    # have held it; it goes back to the first one
    await cclient.post(f"/Task/{task_id}/$accept")
    async with capp.state.db.pool.acquire() as conn:
        clock.advance(minutes=31)
        done = await scheduler.run_due(conn, clock())
        assert [(e.action, e.from_role, e.to_role) for e in done] == [("reassign", second, first)]
        clock.advance(minutes=31)
        done = await scheduler.run_due(conn, clock())  # third time: max_escalations (2) reached
        assert [(e.action, e.from_role, e.to_role) for e in done] == [("notify", first, None)]
        assert await scheduler.run_due(conn, clock.advance(hours=5)) == []  # marked once

    task = (await cclient.get(f"/Task/{task_id}")).json()
    assert task["status"] == "requested"
    assert task["businessStatus"]["coding"][0]["code"] == "overdue"
    assert [e["extension"][1]["valueCode"] for e in task["extension"]] == ["reassign", "reassign", "notify"]

    timeliness = (await cclient.get("/$consult-timeliness")).json()
    readers = {}
    for param in timeliness["parameter"]:
        if param["name"] == "reader":
            parts = {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in param["part"]}
            readers[parts["reader"]["reference"]] = parts
    assert readers[f"PractitionerRole/{first}"]["overdueTotal"] == 2
    assert readers[f"PractitionerRole/{first}"]["overdueOpen"] == 1
    assert readers[f"PractitionerRole/{second}"]["overdueTotal"] == 1
    assert readers[f"PractitionerRole/{second}"]["open"] == 0
    sites = [p for p in timeliness["parameter"] if p["name"] == "site"]
    site_parts = {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in sites[0]["part"]}
    assert site_parts["site"] == {"reference": "Organization/org-ptsdyyy"}
    assert site_parts["overdueTotal"] == 3
    assert site_parts["overdueOpen"] == 1

    metrics = (
        await httpx.AsyncClient(transport=httpx.ASGITransport(app=capp), base_url="http://t").get("/metrics")
    ).text
    assert f'phix_consult_overdue{{reader="{first}",site="org-ptsdyyy"}} 1.0' in metrics
    assert (
        f'phix_consult_escalations_total{{action="reassign",reader="{first}",site="org-ptsdyyy"}} 1.0'
        in metrics
    )
    assert (
        f'phix_consult_escalations_total{{action="notify",reader="{first}",site="org-ptsdyyy"}} 1.0'
        in metrics
    )


async def test_in_progress_consult_is_notified_not_taken_away(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock
) -> None:
    task_id, task = await _stat_consult(cclient)
    await cclient.post(f"/Task/{task_id}/$accept")
    await cclient.post(f"/Task/{task_id}/$start")
    async with capp.state.db.pool.acquire() as conn:
        done = await capp.state.consult_scheduler.run_due(conn, clock.advance(minutes=45))
    assert [e.action for e in done] == ["notify"]
    after = (await cclient.get(f"/Task/{task_id}")).json()
    assert after["status"] == "in-progress"
    assert after["owner"] == task["owner"]
    assert after["businessStatus"]["coding"][0]["code"] == "overdue"


async def test_concurrent_schedulers_escalate_once(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock, db_url: str
) -> None:
    ids = [(await _stat_consult(cclient))[0] for _ in range(6)]
    now = clock.advance(hours=1)
    conns = [await asyncpg.connect(db_url) for _ in range(3)]
    try:
        runs = await asyncio.gather(*(capp.state.consult_scheduler.run_due(c, now) for c in conns))
    finally:
        for c in conns:
            await c.close()
    escalated = sorted(e.task_id for run in runs for e in run)
    assert escalated == sorted(ids)
    async with capp.state.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM consult_escalations") == 6


async def test_unassigned_consult_is_visible_then_assigned_when_a_contract_appears(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock
) -> None:
    await seed(
        cclient,
        [
            {
                "resourceType": "PractitionerRole",
                "id": "role-gp2",
                "active": True,
                "organization": {"reference": "Organization/org-hszxwsy"},
            }
        ],
    )
    task_id, task = await _stat_consult(cclient, requester="PractitionerRole/role-gp2")
    assert "owner" not in task
    assert task["status"] == "requested"
    assert task["businessStatus"]["coding"][0]["code"] == "unassigned"
    assert task["requester"] == {"reference": "Organization/org-hszxwsy"}
    assert "No contracted reader is available" in task["note"][0]["text"]
    timeliness = (await cclient.get("/$consult-timeliness")).json()
    unassigned = [
        p
        for p in timeliness["parameter"]
        if p["name"] == "site" and any(x["name"] == "unassigned" for x in p["part"])
    ]
    assert {x["name"]: x.get("valueInteger") for x in unassigned[0]["part"]}["open"] == 1
    # an accept without an owner is refused
    refused = await cclient.post(f"/Task/{task_id}/$accept")
    assert refused.status_code == 409
    assert refused.json()["issue"][0]["expression"] == ["Task.owner"]

    await seed(cclient, [affiliation("hszxwsy", "ptxyfsyy")])
    async with capp.state.db.pool.acquire() as conn:
        done = await capp.state.consult_scheduler.run_due(conn, clock.advance(minutes=1))
    assert [(e.action, e.to_role) for e in done] == [("assign", "role-r3")]
    task = (await cclient.get(f"/Task/{task_id}")).json()
    assert task["owner"] == {"reference": "PractitionerRole/role-r3"}
    assert task["businessStatus"]["coding"][0]["code"] == "assigned"


async def test_expired_or_inactive_contracts_do_not_count(cclient: httpx.AsyncClient) -> None:
    await seed(
        cclient,
        [
            {
                "resourceType": "PractitionerRole",
                "id": "role-gp2",
                "active": True,
                "organization": {"reference": "Organization/org-hszxwsy"},
            },
            affiliation("hszxwsy", "ptxyfsyy", period={"start": "2020-01-01", "end": "2025-12-31"}),
            affiliation("hszxwsy", "ptsdyyy") | {"active": False},
        ],
    )
    _, task = await _stat_consult(cclient, requester="PractitionerRole/role-gp2")
    assert "owner" not in task


async def test_background_loop_escalates(settings: object, clock: Clock) -> None:
    from phix.app import create_app
    from phix.consult.settings import ConsultSettings

    app = create_app(settings)  # type: ignore[arg-type]
    app.state.consult_settings = ConsultSettings(scheduler_interval_seconds=0.05)
    app.state.clock = clock
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir") as client:
            await seed(client)
            task_id, _ = await _stat_consult(client)
            clock.advance(minutes=31)
            for _ in range(100):
                task = (await client.get(f"/Task/{task_id}")).json()
                if task["businessStatus"]["coding"][0]["code"] == "escalated":
                    break
                await asyncio.sleep(0.05)
            assert task["businessStatus"]["coding"][0]["code"] == "escalated"
    assert app.state.consult_loop is None  # stopped on shutdown
