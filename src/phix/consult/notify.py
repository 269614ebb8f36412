"""What to tell whom: consult events to webhooks, Task writes to Subscription rest-hooks.

Events and their recipients (``ConsultSettings.webhooks`` maps an Organization id to a URL):

=============  ==========================  ======================================================
event          recipient                   when
=============  ==========================  ======================================================
assigned       reading site                a reader was assigned (first time or reassignment)
completed      requesting hospital         the DiagnosticReport completed the Task
rejected       requesting hospital         a reader rejected and no other reader was available
overdue        requester and reading site  the deadline passed (escalation)
unassigned     requesting hospital         no contracted reader is available
cancelled      reading site                the consult was cancelled
=============  ==========================  ======================================================

The webhook body is JSON (``application/json``) with a bilingual ``message``; see docs/consult.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from phix.consult.outbox import enqueue
from phix.consult.settings import ConsultSettings
from phix.consult.subscriptions import header_lines, matching
from phix.fhir import fhirjson
from phix.storage.repository import format_instant

RECIPIENTS = {
    "assigned": ("site",),
    "completed": ("requester",),
    "rejected": ("requester",),
    "overdue": ("requester", "site"),
    "unassigned": ("requester",),
    "cancelled": ("site",),
}

MESSAGES = {
    "assigned": (
        "新的远程影像会诊已分配，请于{due}前出具报告。",
        "A new imaging teleconsultation was assigned; the report is due by {due}.",
    ),
    "completed": ("远程影像会诊报告已出具。", "The imaging teleconsultation report is available."),
    "rejected": (
        "会诊被阅片医师拒绝，暂无其他签约医师。",
        "The consult was rejected and no other contracted reader is available.",
    ),
    "overdue": (
        "远程影像会诊已超时（截止{due}）。",
        "The imaging teleconsultation is overdue (it was due by {due}).",
    ),
    "unassigned": (
        "暂无可用的签约阅片医师，会诊待分配。",
        "No contracted reader is available; the consult awaits one.",
    ),
    "cancelled": ("远程影像会诊已取消。", "The imaging teleconsultation was cancelled."),
}


def _ref(res_type: str, res_id: str | None) -> dict[str, str] | None:
    return {"reference": f"{res_type}/{res_id}"} if res_id else None


async def consult_event(
    conn: asyncpg.Connection,
    settings: ConsultSettings,
    event: str,
    row: dict[str, Any],
    now: datetime,
    *,
    site_org: str | None = None,
) -> list[int]:
    """Queue ``event`` for the webhooks of its recipients; ``row`` is the consult_tasks row.

    ``site_org`` overrides the site (the reader's site at the time, e.g. before an escalation).
    """
    if event not in settings.notify_events:
        return []
    site = site_org or row.get("site_org")
    orgs = {"requester": row.get("requester_org"), "site": site}
    due = row.get("due_at") if event != "overdue" else row.get("missed_due", row.get("due_at"))
    due_text = format_instant(due) if isinstance(due, datetime) else "-"
    zh, en = MESSAGES[event]
    payload = {
        "event": f"consult.{event}",
        "occurredAt": format_instant(now),
        "task": _ref("Task", row["task_id"]),
        "serviceRequest": _ref("ServiceRequest", row.get("sr_id")),
        "diagnosticReport": _ref("DiagnosticReport", row.get("report_id")),
        "requester": _ref("Organization", row.get("requester_org")),
        "site": _ref("Organization", site),
        "reader": _ref("PractitionerRole", row.get("owner_role")),
        "priority": row.get("priority"),
        "status": row.get("status"),
        "dueAt": format_instant(due) if isinstance(due, datetime) else None,
        "message": {"zh": zh.format(due=due_text), "en": en.format(due=due_text)},
    }
    body = orjson.dumps({k: v for k, v in payload.items() if v is not None})
    queued = []
    for role in RECIPIENTS[event]:
        org = orgs[role]
        url = settings.webhooks.get(org) if org else None
        if url:
            queued.append(
                await enqueue(
                    conn,
                    event=event,
                    task_id=row["task_id"],
                    channel="webhook",
                    target=f"Organization/{org}",
                    url=url,
                    now=now,
                    body=body,
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
            )
    return queued


async def emit(
    conn: asyncpg.Connection,
    settings: ConsultSettings,
    event: str,
    task_id: str,
    now: datetime,
    *,
    site_org: str | None = None,
    missed_due: datetime | None = None,
) -> list[int]:
    """Queue ``event`` for one consult, reading its current projection row."""
    if event not in settings.notify_events or not settings.webhooks:
        return []
    row = await conn.fetchrow("SELECT * FROM consult_tasks WHERE task_id = $1", task_id)
    if row is None:
        return []
    data = dict(row)
    if missed_due is not None:
        data["missed_due"] = missed_due
    return await consult_event(conn, settings, event, data, now, site_org=site_org)


async def task_subscriptions(
    conn: asyncpg.Connection, task_id: str, task: dict[str, Any], now: datetime
) -> list[int]:
    """Queue a rest-hook for every live Subscription whose criteria the Task (as written) meets."""
    queued = []
    for sub_id, subscription in await matching(conn, task_id, task, now):
        channel = subscription.get("channel") or {}
        headers = header_lines(channel)
        endpoint = str(channel["endpoint"])
        payload = channel.get("payload")
        if payload:
            headers.setdefault("Content-Type", str(payload))
            url, method, body = f"{endpoint.rstrip('/')}/Task/{task_id}", "PUT", fhirjson.dumps(task)
        else:
            url, method, body = endpoint, "POST", None
        queued.append(
            await enqueue(
                conn,
                event="subscription",
                task_id=task_id,
                channel="rest-hook",
                target=f"Subscription/{sub_id}",
                url=url,
                now=now,
                body=body,
                method=method,
                headers=headers,
            )
        )
    return queued
