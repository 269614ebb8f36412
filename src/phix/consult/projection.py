"""The ``consult_tasks`` projection: one row per consult Task, rewritten on every Task write.

It holds what the scheduler, the assignment and the timeliness report query (deadline, owner,
site, turnaround) and is derived from the Task alone, so it can always be rebuilt from the Tasks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from phix.consult import codes
from phix.consult.codes import BUSINESS_STATUS_SYSTEM, coding_code, first_ref, ref_id
from phix.consult.roster import organization_of_role
from phix.consult.tasks import escalation_count, report_of
from phix.consult.workflow import FINAL, State
from phix.errors import Category, FhirError
from phix.fhir.dates import parse_instant_range

_UPSERT = """
INSERT INTO consult_tasks (
    task_id, sr_id, requester_org, owner_role, site_org, priority, status, business_status,
    requested_at, received_at, due_at, first_due_at, deadline_state, overdue_at, escalations,
    assigned_at, completed_at, report_id, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (task_id) DO UPDATE SET
    sr_id = EXCLUDED.sr_id, requester_org = EXCLUDED.requester_org, owner_role = EXCLUDED.owner_role,
    site_org = EXCLUDED.site_org, priority = EXCLUDED.priority, status = EXCLUDED.status,
    business_status = EXCLUDED.business_status, requested_at = EXCLUDED.requested_at,
    received_at = EXCLUDED.received_at, due_at = EXCLUDED.due_at, first_due_at = EXCLUDED.first_due_at,
    deadline_state = EXCLUDED.deadline_state, overdue_at = EXCLUDED.overdue_at,
    escalations = EXCLUDED.escalations, assigned_at = EXCLUDED.assigned_at,
    completed_at = EXCLUDED.completed_at, report_id = EXCLUDED.report_id, updated_at = EXCLUDED.updated_at
"""


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_instant_range(value)[0]
    except FhirError:
        return None


def owner_of(task: dict[str, Any]) -> str | None:
    """The owner's PractitionerRole id; a consult Task may be owned by a PractitionerRole only."""
    owner = task.get("owner")
    if owner is None:
        return None
    role = ref_id(owner, "PractitionerRole")
    if role is None:
        raise FhirError(
            Category.INVALID,
            "The owner of a teleconsultation Task must be a PractitionerRole (the reader at a site)",
            expression=["Task.owner"],
            code="business-rule",
        )
    return role


def state_of(task: dict[str, Any]) -> State:
    return State(str(task.get("status")), owner_of(task))


def previous_state(row: asyncpg.Record | None) -> State | None:
    return None if row is None else State(row["status"], row["owner_role"])


async def load(conn: asyncpg.Connection, task_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM consult_tasks WHERE task_id = $1 FOR UPDATE", task_id)


async def _requester_org(conn: asyncpg.Connection, task: dict[str, Any]) -> str | None:
    requester = task.get("requester")
    org = ref_id(requester, "Organization")
    if org is None and (role := ref_id(requester, "PractitionerRole")):
        org = await organization_of_role(conn, role)
    return org


def _deadline_state(status: str, business: str | None, due_at: datetime | None) -> str:
    if status in FINAL or status == "rejected":
        return "done"
    if business == codes.OVERDUE:
        return "overdue"
    return "pending" if due_at is not None else "none"


async def upsert(
    conn: asyncpg.Connection,
    task_id: str,
    task: dict[str, Any],
    previous: asyncpg.Record | None,
    now: datetime,
    kind: str,
) -> None:
    """Write the projection row; record an assignment when the owner changed."""
    role = owner_of(task)
    owner_changed = previous is None or previous["owner_role"] != role
    if role is None:
        site = None
    elif owner_changed or previous is None:
        site = await organization_of_role(conn, role)
    else:
        site = previous["site_org"]
    requester = (
        previous["requester_org"]
        if previous is not None and previous["requester_org"]
        else await _requester_org(conn, task)
    )
    status = str(task.get("status"))
    business = coding_code(task.get("businessStatus"), BUSINESS_STATUS_SYSTEM)
    due_at = _instant((task.get("restriction") or {}).get("period", {}).get("end"))
    escalations = escalation_count(task)
    overdue_at = previous["overdue_at"] if previous is not None else None
    if overdue_at is None and (escalations or business == codes.OVERDUE):
        overdue_at = now
    completed_at = previous["completed_at"] if previous is not None else None
    if status == "completed" and completed_at is None:
        completed_at = now
    assigned_at = now if (owner_changed and role) else (previous["assigned_at"] if previous else None)
    await conn.execute(
        _UPSERT,
        task_id,
        first_ref(task.get("basedOn"), "ServiceRequest") or "",
        requester,
        role,
        site,
        str(task.get("priority") or "routine"),
        status,
        business,
        _instant(task.get("authoredOn")) or (previous["requested_at"] if previous else now),
        _instant((task.get("restriction") or {}).get("period", {}).get("start"))
        or (previous["received_at"] if previous else now),
        due_at,
        previous["first_due_at"] if previous is not None and previous["first_due_at"] else due_at,
        _deadline_state(status, business, due_at),
        overdue_at,
        escalations,
        assigned_at,
        completed_at,
        report_of(task),
        now,
    )
    if owner_changed and role:
        reason = kind if kind in {"assign", "create"} else "reassign"
        if previous is not None and escalations > previous["escalations"]:
            reason = "escalate"
        elif previous is not None and previous["status"] == "rejected":
            reason = "reject"
        await conn.execute(
            "INSERT INTO consult_assignments (task_id, role_id, site_org, at, reason)"
            " VALUES ($1, $2, $3, $4, $5)",
            task_id,
            role,
            site,
            now,
            "assign" if reason == "create" else reason,
        )
