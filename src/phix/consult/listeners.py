"""The consult domain's write listener: called inside every write transaction.

* ServiceRequest (teleconsultation): creates the Task, or cancels it when the request is revoked.
* Task (teleconsultation): enforces the state machine against the previous state (the
  ``consult_tasks`` row, locked), rewrites that row, queues the consult events and the
  Subscription rest-hooks. A refused transition raises 409 and the whole write rolls back.
* DiagnosticReport: a final report ``basedOn`` a consult's ServiceRequest completes its Task.
* Subscription: a Task Subscription outside the served subset is refused (422).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from phix.consult import projection, workflow
from phix.consult.codes import first_ref, is_consult
from phix.consult.notify import emit, task_subscriptions
from phix.consult.service import ConsultService
from phix.consult.subscriptions import check_subscription
from phix.consult.tasks import report_of
from phix.errors import Category, FhirError
from phix.storage.repository import Version


class ConsultListener:
    def __init__(self, service: ConsultService) -> None:
        self.service = service

    async def after_write(
        self, conn: asyncpg.Connection, version: Version, resource: dict[str, Any] | None
    ) -> None:
        kind = version.res_type
        if kind == "Task":
            await self.on_task(conn, version, resource)
        elif resource is None:
            return
        elif kind == "ServiceRequest":
            await self.service.on_service_request(conn, version, resource)
        elif kind == "DiagnosticReport":
            await self.service.on_report(conn, version, resource)
        elif kind == "Subscription":
            check_subscription(resource)

    async def on_task(self, conn: asyncpg.Connection, version: Version, task: dict[str, Any] | None) -> None:
        task_id, now = version.res_id, version.last_updated
        previous = await projection.load(conn, task_id)
        if task is None:
            if previous is not None:
                await conn.execute("DELETE FROM consult_tasks WHERE task_id = $1", task_id)
            return
        if not is_consult(task):
            if previous is not None:
                raise FhirError(
                    Category.CONFLICT,
                    f"Task/{task_id} is a teleconsultation Task and must keep its code",
                    expression=["Task.code"],
                    code="business-rule",
                )
            return
        after = projection.state_of(task)
        kind = workflow.check(
            task_id, projection.previous_state(previous), after, has_report=report_of(task) is not None
        )
        if previous is None:
            await self._check_new(conn, task_id, task)
        await projection.upsert(conn, task_id, task, previous, now, kind)
        await self._events(conn, task_id, previous, after, kind, now)
        await task_subscriptions(conn, task_id, task, now)

    async def _check_new(self, conn: asyncpg.Connection, task_id: str, task: dict[str, Any]) -> None:
        sr_id = first_ref(task.get("basedOn"), "ServiceRequest")
        if sr_id is None:
            raise FhirError(
                Category.INVALID,
                "A teleconsultation Task is basedOn its ServiceRequest",
                expression=["Task.basedOn"],
                code="required",
            )
        other = await conn.fetchval(
            "SELECT task_id FROM consult_tasks WHERE sr_id = $1 AND task_id <> $2", sr_id, task_id
        )
        if other is not None:
            raise FhirError(
                Category.CONFLICT,
                f"ServiceRequest/{sr_id} already has its teleconsultation Task/{other}",
                expression=["Task.basedOn"],
                code="duplicate",
            )

    async def _events(
        self,
        conn: asyncpg.Connection,
        task_id: str,
        previous: asyncpg.Record | None,
        after: workflow.State,
        kind: str,
        now: Any,
    ) -> None:
        settings = self.service.settings
        if kind in {"create", "assign", "reassign"}:
            await emit(conn, settings, "assigned" if after.owner else "unassigned", task_id, now)
        elif kind == "transition" and after.status in {"completed", "cancelled"}:
            site = previous["site_org"] if previous is not None else None
            await emit(conn, settings, after.status, task_id, now, site_org=site)
