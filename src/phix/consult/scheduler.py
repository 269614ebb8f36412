"""Deadlines: find overdue consults and escalate them; retry consults that await a reader.

:meth:`Scheduler.run_due` is one pass at a given ``now`` (tests call it with a controlled clock);
:func:`run_forever` repeats it (and outbox delivery) in the background. Each consult is handled in
its own transaction after locking its Task row with ``FOR UPDATE SKIP LOCKED`` and re-reading its
state, so several workers never escalate one consult twice and never wait on each other. Locks are
taken in the same order as the API's (Task row, then the projection row), so no deadlock.

Escalation of an overdue consult (``ConsultSettings.escalation``):

* ``reassign`` (default), while the Task is not yet ``in-progress`` and fewer than
  ``max_escalations`` happened: hand it to another contracted reader (preferring one who never
  held it) with a new deadline, ``businessStatus`` escalated;
* otherwise, or when no other reader exists: ``businessStatus`` overdue and a notification.

Either way the Task records it (``Task.note`` and a ``consult-escalation`` extension), a
``consult_escalations`` row keeps it for the timeliness figures, and an ``overdue`` event goes to
the requester and the site.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from phix.consult import codes, tasks
from phix.consult.notify import emit
from phix.consult.service import ConsultService
from phix.consult.settings import ConsultSettings
from phix.storage.repository import format_instant

log = logging.getLogger(__name__)

_OVERDUE = """
SELECT task_id FROM consult_tasks
WHERE deadline_state = 'pending' AND due_at <= $1 AND status IN ('requested', 'accepted', 'in-progress')
ORDER BY due_at LIMIT $2
"""
_UNASSIGNED = """
SELECT task_id FROM consult_tasks WHERE owner_role IS NULL AND status = 'requested'
ORDER BY received_at LIMIT $1
"""
_LOCK = "SELECT 1 FROM resources WHERE res_type = 'Task' AND res_id = $1 FOR UPDATE SKIP LOCKED"


@dataclass(frozen=True)
class Escalation:
    task_id: str
    action: str  # reassign | notify | assign
    missed_due: datetime | None
    from_role: str | None
    to_role: str | None


class Scheduler:
    def __init__(self, service: ConsultService) -> None:
        self.service = service

    @property
    def settings(self) -> ConsultSettings:
        return self.service.settings

    async def run_due(self, conn: asyncpg.Connection, now: datetime) -> list[Escalation]:
        """One pass: assign waiting consults, then escalate every overdue one."""
        done = await self._assign_waiting(conn, now)
        for task_id in [r["task_id"] for r in await conn.fetch(_OVERDUE, now, self.settings.scheduler_batch)]:
            try:
                async with conn.transaction():
                    if await conn.fetchval(_LOCK, task_id) is None:
                        continue  # another worker holds it
                    row = await conn.fetchrow("SELECT * FROM consult_tasks WHERE task_id = $1", task_id)
                    if row is None or row["deadline_state"] != "pending" or row["due_at"] > now:
                        continue
                    done.append(await self._escalate(conn, row, now))
            except Exception:
                log.exception("consult escalation failed", extra={"task": task_id})
        return done

    async def _assign_waiting(self, conn: asyncpg.Connection, now: datetime) -> list[Escalation]:
        done = []
        for task_id in [r["task_id"] for r in await conn.fetch(_UNASSIGNED, self.settings.scheduler_batch)]:
            try:
                async with conn.transaction():
                    if await conn.fetchval(_LOCK, task_id) is None:
                        continue
                    row = await conn.fetchrow(
                        "SELECT owner_role, status FROM consult_tasks WHERE task_id = $1 FOR UPDATE", task_id
                    )
                    if row is None or row["owner_role"] is not None or row["status"] != "requested":
                        continue
                    reader = await self.service.pick_other(conn, task_id, now, exclude_all=True)
                    if reader is None:
                        continue
                    await self.service.assign(conn, task_id, reader.role_id, now)
                    done.append(Escalation(task_id, "assign", None, None, reader.role_id))
            except Exception:
                log.exception("consult assignment failed", extra={"task": task_id})
        return done

    async def _escalate(self, conn: asyncpg.Connection, row: asyncpg.Record, now: datetime) -> Escalation:
        task_id, missed = row["task_id"], row["due_at"]
        reader = None
        if (
            self.settings.escalation == "reassign"
            and row["status"] in {"requested", "accepted"}
            and row["escalations"] < self.settings.max_escalations
        ):
            reader = await self.service.pick_other(conn, task_id, now, exclude_all=True)
            reader = reader or await self.service.pick_other(conn, task_id, now, exclude_all=False)
        action = "reassign" if reader else "notify"
        _, task = await self.service.read_task(conn, task_id)
        to_role = reader.role_id if reader else None
        tasks.add_escalation(
            task, at=now, action=action, missed_due=missed, from_role=row["owner_role"], to_role=to_role
        )
        due_text = format_instant(missed)
        if reader is not None:
            grace = self.settings.escalation_grace or self.settings.deadlines.for_priority(row["priority"])
            tasks.set_owner(task, reader.role_id, now)
            tasks.set_status(task, "requested", now)
            tasks.set_business(task, codes.ESCALATED, now)
            tasks.set_deadline(task, now + grace)
            tasks.add_note(
                task,
                now,
                f"会诊超时（截止{due_text}），已改派给 PractitionerRole/{reader.role_id}。/ Overdue (due "
                f"{due_text}); reassigned to PractitionerRole/{reader.role_id}.",
            )
        else:
            tasks.set_business(task, codes.OVERDUE, now)
            tasks.add_note(
                task, now, f"会诊超时（截止{due_text}），已通知。/ Overdue (due {due_text}); notified."
            )
        await self.service.write_task(conn, task_id, task, now)
        await conn.execute(
            "INSERT INTO consult_escalations (task_id, at, missed_due, priority, action, from_role,"
            " from_site, to_role, to_site) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            task_id,
            now,
            missed,
            row["priority"],
            action,
            row["owner_role"],
            row["site_org"],
            to_role,
            reader.site_org if reader else None,
        )
        await emit(conn, self.settings, "overdue", task_id, now, site_org=row["site_org"], missed_due=missed)
        return Escalation(task_id, action, missed, row["owner_role"], to_role)


async def run_forever(
    tick: Callable[[], Awaitable[object]],
    interval: float,
) -> None:
    """Call ``tick`` every ``interval`` seconds until cancelled; a failing tick is logged."""
    while True:
        try:
            await tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("consult scheduler tick failed")
        await asyncio.sleep(interval)
