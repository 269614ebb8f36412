"""Notifications: webhooks and Subscription rest-hooks through the outbox, retried against a real
HTTP server on 127.0.0.1 that fails the first attempts."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson
import pytest
from fastapi import FastAPI

from phix.consult.settings import ConsultSettings

from .world import Clock, Receiver, consult_request, report, task_of

SECRET = "s3cret-for-tests"


@pytest.fixture
def consult_settings(receiver: Receiver) -> ConsultSettings:
    return ConsultSettings(
        scheduler_enabled=False,
        webhooks={"org-xtwzwsy": f"{receiver.url}/requester", "org-ptsdyyy": f"{receiver.url}/site"},
        webhook_secret=SECRET,
        delivery_backoff_seconds=10,
        delivery_max_attempts=4,
    )


async def test_completion_webhook_is_retried_until_delivered(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock, receiver: Receiver
) -> None:
    sr = (await cclient.post("/ServiceRequest", json=consult_request("urgent"))).json()
    task_id = task_of((await cclient.get("/$consult-timeliness")).json(), sr["id"])
    outbox = capp.state.consult_outbox

    # the site learns of the new consult
    sent = await outbox.deliver_due(clock())
    assert [(d.state, d.status) for d in sent] == [("delivered", 200)]
    assigned = orjson.loads(receiver.received[0].body)
    assert receiver.received[0].path == "/site"
    assert assigned["event"] == "consult.assigned"
    assert assigned["dueAt"] == "2026-03-02T03:00:00.000000Z"
    assert assigned["message"]["zh"] == "新的远程影像会诊已分配，请于2026-03-02T03:00:00.000000Z前出具报告。"

    await cclient.post(f"/Task/{task_id}/$accept")
    clock.advance(minutes=50)
    done = (await cclient.post(f"/Task/{task_id}/$complete", json=report())).json()
    receiver.statuses = [503, 500]  # the requester's endpoint fails twice

    first = await outbox.deliver_due(clock())
    assert [(d.attempt, d.status, d.state) for d in first] == [(1, 503, "pending")]
    assert await outbox.deliver_due(clock.advance(seconds=9)) == []  # backoff 10 s not over
    second = await outbox.deliver_due(clock.advance(seconds=1))
    assert [(d.attempt, d.status, d.state) for d in second] == [(2, 500, "pending")]
    assert await outbox.deliver_due(clock.advance(seconds=19)) == []  # backoff doubled: 20 s
    third = await outbox.deliver_due(clock.advance(seconds=1))
    assert [(d.attempt, d.status, d.state) for d in third] == [(3, 200, "delivered")]
    assert await outbox.deliver_due(clock.advance(hours=1)) == []

    attempts = [r for r in receiver.received if r.path == "/requester"]
    assert len(attempts) == 3
    assert len({r.headers["x-phix-delivery"] for r in attempts}) == 1  # same delivery id: dedupe key
    last = attempts[-1]
    assert last.method == "POST"
    assert last.headers["content-type"] == "application/json; charset=utf-8"
    assert last.headers["x-phix-event"] == "completed"
    expected = hmac.new(SECRET.encode(), last.body, hashlib.sha256).hexdigest()
    assert last.headers["x-phix-signature"] == f"sha256={expected}"
    payload = orjson.loads(last.body)
    assert payload == {
        "event": "consult.completed",
        "occurredAt": "2026-03-02T01:50:00.000000Z",
        "task": {"reference": f"Task/{task_id}"},
        "serviceRequest": {"reference": f"ServiceRequest/{sr['id']}"},
        "diagnosticReport": done["output"][0]["valueReference"],
        "requester": {"reference": "Organization/org-xtwzwsy"},
        "site": {"reference": "Organization/org-ptsdyyy"},
        "reader": done["owner"],
        "priority": "urgent",
        "status": "completed",
        "dueAt": "2026-03-02T03:00:00.000000Z",
        "message": {
            "zh": "远程影像会诊报告已出具。",
            "en": "The imaging teleconsultation report is available.",
        },
    }


async def test_delivery_gives_up_after_max_attempts(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 10
    await cclient.post("/ServiceRequest", json=consult_request())
    outbox = capp.state.consult_outbox
    states = []
    for _ in range(6):
        states += [d.state for d in await outbox.deliver_due(clock.advance(hours=2))]
    assert states == ["pending", "pending", "pending", "failed"]
    async with capp.state.db.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT state, attempts, last_status, last_error FROM consult_outbox")
    assert dict(row) == {"state": "failed", "attempts": 4, "last_status": 500, "last_error": "HTTP 500: ok"}


async def test_unreachable_endpoint_is_retried(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock
) -> None:
    capp.state.consult_settings.webhooks["org-ptsdyyy"] = "http://127.0.0.1:9/closed"
    await cclient.post("/ServiceRequest", json=consult_request())
    sent = await capp.state.consult_outbox.deliver_due(clock())
    assert [(d.state, d.status) for d in sent] == [("pending", None)]
    assert sent[0].error is not None and sent[0].error.startswith("ConnectError")


async def test_subscription_rest_hook_with_payload(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock, receiver: Receiver
) -> None:
    capp.state.consult_settings.webhooks.clear()
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "报告完成通知 / report notification",
        "criteria": "Task?status=completed&requester=Organization/org-xtwzwsy",
        "channel": {
            "type": "rest-hook",
            "endpoint": f"{receiver.url}/fhir",
            "payload": "application/fhir+json",
            "header": ["Authorization: Bearer abc"],
        },
    }
    created = await cclient.post("/Subscription", json=subscription)
    assert created.status_code == 201, created.text
    sr = (await cclient.post("/ServiceRequest", json=consult_request())).json()
    task_id = task_of((await cclient.get("/$consult-timeliness")).json(), sr["id"])
    await cclient.post(f"/Task/{task_id}/$accept")
    assert await capp.state.consult_outbox.deliver_due(clock()) == []  # not completed yet: no match
    receiver.statuses = [502]
    await cclient.post(f"/Task/{task_id}/$complete", json=report())
    assert [d.state for d in await capp.state.consult_outbox.deliver_due(clock())] == ["pending"]
    assert [d.state for d in await capp.state.consult_outbox.deliver_due(clock.advance(seconds=10))] == [
        "delivered"
    ]
    hook = receiver.received[-1]
    assert (hook.method, hook.path) == ("PUT", f"/fhir/Task/{task_id}")
    assert hook.headers["authorization"] == "Bearer abc"
    assert hook.headers["content-type"] == "application/fhir+json"
    assert orjson.loads(hook.body)["status"] == "completed"


async def test_subscription_payload_keeps_decimal_digits(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock, receiver: Receiver
) -> None:
    """The Task a listener gets carries client decimals as Decimal (``1.50``): the payload keeps them."""
    capp.state.consult_settings.webhooks.clear()
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "decimal digits",
        "criteria": "Task?requester=Organization/org-xtwzwsy",
        "channel": {
            "type": "rest-hook",
            "endpoint": f"{receiver.url}/fhir",
            "payload": "application/fhir+json",
        },
    }
    assert (await cclient.post("/Subscription", json=subscription)).status_code == 201
    sr = (await cclient.post("/ServiceRequest", json=consult_request())).json()
    task_id = task_of((await cclient.get("/$consult-timeliness")).json(), sr["id"])
    task = (await cclient.get(f"/Task/{task_id}")).json()
    task["extension"] = [{"url": "urn:phix:test", "valueDecimal": orjson.Fragment(b"1.50")}]
    put = await cclient.put(
        f"/Task/{task_id}", content=orjson.dumps(task), headers={"Content-Type": "application/fhir+json"}
    )
    assert put.status_code == 200, put.text
    await capp.state.consult_outbox.deliver_due(clock())
    hook = [r for r in receiver.received if r.method == "PUT"][-1]
    assert b'"valueDecimal":1.50' in hook.body


async def test_subscription_without_payload_is_an_empty_post(
    capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock, receiver: Receiver
) -> None:
    capp.state.consult_settings.webhooks.clear()
    await cclient.post(
        "/Subscription",
        json={
            "resourceType": "Subscription",
            "status": "active",
            "reason": "overdue",
            "criteria": "Task?business-status=overdue,escalated",
            "channel": {"type": "rest-hook", "endpoint": f"{receiver.url}/ping"},
        },
    )
    await cclient.post("/ServiceRequest", json=consult_request("stat"))
    async with capp.state.db.pool.acquire() as conn:
        await capp.state.consult_scheduler.run_due(conn, clock.advance(hours=1))
    sent = await capp.state.consult_outbox.deliver_due(clock())
    assert [d.state for d in sent] == ["delivered"]
    assert (receiver.received[-1].method, receiver.received[-1].path, receiver.received[-1].body) == (
        "POST",
        "/ping",
        b"",
    )


async def test_unsupported_task_subscription_is_422(cclient: httpx.AsyncClient) -> None:
    response = await cclient.post(
        "/Subscription",
        json={
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "x",
            "criteria": "Task?authored-on=gt2026",
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:1/x"},
        },
    )
    assert response.status_code == 422
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "not-supported",
                "diagnostics": "criteria parameter 'authored-on' is not supported for Task subscriptions; "
                "supported: _id, based-on, business-status, code, focus, intent, owner, patient, priority, "
                "requester, status, subject",
                "expression": ["Subscription.criteria"],
            }
        ],
    }
