"""The consult service: intake of ServiceRequests, reader assignment and the Task actions.

Every change to a consult Task goes through :meth:`ConsultService.write_task`, i.e. through the
repository with all write listeners, so the state machine, the projection, the search index and
the Subscriptions see the same writes whether they come from an operation, the scheduler or a
plain ``PUT``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from phix.consult import codes, roster, tasks, workflow
from phix.consult.codes import PRIORITIES, first_ref, is_consult, ref_id, reference
from phix.consult.notify import emit
from phix.consult.settings import ConsultSettings
from phix.errors import Category, FhirError, Issue
from phix.fhir.dates import parse_instant_range
from phix.storage.context import RequestContext
from phix.storage.repository import Repository, Version, WriteListener, format_instant

Resource = dict[str, Any]
_ASSIGN_LOCK = 0x70636F6E  # "pcon": one assignment at a time, so least-loaded sees every new load
_SYSTEM = RequestContext(client="phix-consult")


def _instant(value: Any) -> datetime | None:
    try:
        return parse_instant_range(value)[0] if isinstance(value, str) else None
    except FhirError:
        return None


class ConsultService:
    def __init__(
        self,
        settings: ConsultSettings,
        listeners: Callable[[], list[WriteListener]],
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.listeners = listeners
        self.clock = clock

    def repository(self, conn: asyncpg.Connection, now: datetime | None = None) -> Repository:
        clock = (lambda: now) if now is not None else self.clock
        return Repository(conn, _SYSTEM, self.listeners(), clock)

    # -- intake -----------------------------------------------------------------------------------

    async def on_service_request(self, conn: asyncpg.Connection, version: Version, sr: Resource) -> None:
        """Create the Task of a new active consult; cancel it when the request is revoked."""
        if not is_consult(sr):
            return
        row = await conn.fetchrow(
            "SELECT task_id, status FROM consult_tasks WHERE sr_id = $1", version.res_id
        )
        if row is not None:
            if sr.get("status") in {"revoked", "entered-in-error"} and row["status"] in {
                "requested",
                "accepted",
                "in-progress",
            }:
                await self.act(
                    conn, row["task_id"], "cancel", now=version.last_updated, reason="ServiceRequest revoked"
                )
            return
        if sr.get("status") != "active":
            return  # a draft or on-hold request gets its Task when it becomes active
        await self.create_task(conn, version.res_id, sr, version.last_updated)

    async def create_task(self, conn: asyncpg.Connection, sr_id: str, sr: Resource, now: datetime) -> Version:
        if tasks.imaging_study_of(sr) is None:
            raise FhirError(
                Category.INVALID,
                "A teleconsultation ServiceRequest names its ImagingStudy in supportingInfo",
                expression=["ServiceRequest.supportingInfo"],
                code="required",
            )
        requester_org = await self.requester_org(conn, sr)
        priority = sr.get("priority") if sr.get("priority") in PRIORITIES else "routine"
        authored = _instant(sr.get("authoredOn"))
        requested_at = authored if authored is not None and authored <= now else now
        due_at = now + self.settings.deadlines.for_priority(str(priority))
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _ASSIGN_LOCK)
        site = first_ref(sr.get("performer"), "Organization")
        reader = await roster.pick_reader(conn, requester_org, now, self.settings, site=site)
        task = tasks.build_task(
            sr_id,
            sr,
            requester=reference("Organization", requester_org)
            if requester_org
            else copy.deepcopy(sr.get("requester")),
            priority=str(priority),
            requested_at=requested_at,
            received_at=now,
            due_at=due_at,
            owner=reference("PractitionerRole", reader.role_id) if reader else None,
        )
        return await self.repository(conn, now).create("Task", task)

    async def requester_org(self, conn: asyncpg.Connection, sr: Resource) -> str | None:
        requester = sr.get("requester")
        if requester is None:
            raise FhirError(
                Category.INVALID,
                "A teleconsultation ServiceRequest needs its requester (Organization or PractitionerRole)",
                expression=["ServiceRequest.requester"],
                code="required",
            )
        org = ref_id(requester, "Organization")
        if org is not None:
            return org
        role = ref_id(requester, "PractitionerRole")
        if role is None:
            raise FhirError(
                Category.INVALID,
                "The requester of a teleconsultation must be an Organization or a PractitionerRole, "
                "so that its hospital's contracts can be found",
                expression=["ServiceRequest.requester"],
                code="business-rule",
            )
        return await roster.organization_of_role(conn, role)

    # -- Task writes ------------------------------------------------------------------------------

    async def read_task(self, conn: asyncpg.Connection, task_id: str) -> tuple[Version, Resource]:
        """Lock and read a consult Task. Lock order everywhere: the Task row, then its consult_tasks
        row (taken by the listener), then the assignment lock; never the other way round."""
        await conn.execute(
            "SELECT 1 FROM resources WHERE res_type = 'Task' AND res_id = $1 FOR UPDATE", task_id
        )
        version = await self.repository(conn).read("Task", task_id)
        task = version.resource()
        if not is_consult(task):
            raise FhirError(
                Category.CONFLICT,
                f"Task/{task_id} is not a teleconsultation Task",
                expression=["Task.code"],
                code="business-rule",
            )
        return version, task

    async def write_task(
        self,
        conn: asyncpg.Connection,
        task_id: str,
        task: Resource,
        now: datetime,
        if_match: int | None = None,
    ) -> Version:
        version, _ = await self.repository(conn, now).update(
            "Task", task_id, task, if_match=if_match, method="PUT"
        )
        return version

    async def previous_owners(self, conn: asyncpg.Connection, task_id: str) -> set[str]:
        rows = await conn.fetch("SELECT role_id FROM consult_assignments WHERE task_id = $1", task_id)
        return {r["role_id"] for r in rows}

    async def pick_other(
        self, conn: asyncpg.Connection, task_id: str, now: datetime, *, exclude_all: bool
    ) -> roster.Reader | None:
        row = await conn.fetchrow(
            "SELECT requester_org, owner_role FROM consult_tasks WHERE task_id = $1", task_id
        )
        if row is None:
            return None
        exclude = await self.previous_owners(conn, task_id) if exclude_all else set()
        if row["owner_role"]:
            exclude.add(row["owner_role"])
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _ASSIGN_LOCK)
        return await roster.pick_reader(conn, row["requester_org"], now, self.settings, exclude=exclude)

    async def act(
        self,
        conn: asyncpg.Connection,
        task_id: str,
        action: str,
        *,
        now: datetime | None = None,
        reason: str | None = None,
        owner: str | None = None,
        if_match: int | None = None,
    ) -> Version:
        """Apply one workflow action (accept, start, reject, cancel, reassign) to a Task."""
        now = now or self.clock()
        async with conn.transaction():
            current, task = await self.read_task(conn, task_id)
            if if_match is not None and current.version != if_match:
                raise _stale(task_id, if_match, current.version)
            if action == "reassign":
                return await self._reassign(conn, task_id, task, now, owner, reason, if_match)
            target = {
                "accept": "accepted",
                "start": "in-progress",
                "reject": "rejected",
                "cancel": "cancelled",
            }
            if task["status"] == target[action] and action in {"accept", "start"}:
                return current  # repeated: nothing to do
            tasks.set_status(task, target[action], now, reason)
            if reason:
                tasks.add_note(task, now, f"{action}: {reason}")
            version = await self.write_task(conn, task_id, task, now, if_match)
            if action == "reject" and self.settings.reassign_on_reject:
                reader = await self.pick_other(conn, task_id, now, exclude_all=True)
                if reader is not None:
                    return await self._hand_over(conn, task_id, task, reader.role_id, now, codes.REASSIGNED)
            if action == "reject":
                await emit(conn, self.settings, "rejected", task_id, now)
            return version

    async def _reassign(
        self,
        conn: asyncpg.Connection,
        task_id: str,
        task: Resource,
        now: datetime,
        owner: str | None,
        reason: str | None,
        if_match: int | None,
    ) -> Version:
        if owner is None:
            reader = await self.pick_other(conn, task_id, now, exclude_all=False)
            if reader is None:
                raise FhirError(
                    Category.CONFLICT,
                    f"Task/{task_id}: no other contracted reader is available",
                    expression=["Task.owner"],
                    code="business-rule",
                )
            owner = reader.role_id
        else:
            await self._check_reader(conn, task_id, owner, now)
        if reason:
            tasks.add_note(task, now, f"reassign: {reason}")
        return await self._hand_over(conn, task_id, task, owner, now, codes.REASSIGNED, if_match)

    async def _check_reader(
        self, conn: asyncpg.Connection, task_id: str, role_id: str, now: datetime
    ) -> None:
        requester = await conn.fetchval("SELECT requester_org FROM consult_tasks WHERE task_id = $1", task_id)
        sites = await roster.contracted_sites(conn, requester, now, self.settings) if requester else []
        readers = await roster.readers_at(conn, sites, now, self.settings)
        if role_id not in {r.role_id for r in readers}:
            raise FhirError(
                Category.CONFLICT,
                f"PractitionerRole/{role_id} is not an active reader at a site contracted with "
                f"Organization/{requester}",
                expression=["Parameters.parameter.where(name='owner')"],
                code="business-rule",
            )

    async def _hand_over(
        self,
        conn: asyncpg.Connection,
        task_id: str,
        task: Resource,
        role_id: str,
        now: datetime,
        business: str,
        if_match: int | None = None,
    ) -> Version:
        tasks.set_owner(task, role_id, now)
        tasks.set_status(task, "requested", now)
        tasks.set_business(task, business, now)
        return await self.write_task(conn, task_id, task, now, if_match)

    async def assign(self, conn: asyncpg.Connection, task_id: str, role_id: str, now: datetime) -> Version:
        """Give an unassigned Task its first reader (the scheduler retries unassigned consults)."""
        _, task = await self.read_task(conn, task_id)
        tasks.set_owner(task, role_id, now)
        tasks.set_business(task, codes.ASSIGNED, now)
        tasks.add_note(task, now, "已分配阅片医师。/ A reader was assigned.")
        return await self.write_task(conn, task_id, task, now)

    # -- the report -------------------------------------------------------------------------------

    async def on_report(self, conn: asyncpg.Connection, version: Version, report: Resource) -> None:
        """A final DiagnosticReport ``basedOn`` a consult's ServiceRequest completes its Task."""
        if report.get("status") not in REPORT_FINAL:
            return
        sr_ids = [x for x in (ref_id(r, "ServiceRequest") for r in report.get("basedOn") or []) if x]
        if not sr_ids:
            return
        row = await conn.fetchrow(
            "SELECT task_id, status FROM consult_tasks WHERE sr_id = ANY($1::text[]) LIMIT 1",
            sr_ids,
        )
        if row is None or row["status"] == "completed":
            return
        check_report(report)
        task_id, now = row["task_id"], version.last_updated
        _, task = await self.read_task(conn, task_id)
        if task["status"] == "accepted":  # reporting implies the reading started
            tasks.set_status(task, "in-progress", now)
            await self.write_task(conn, task_id, task, now)
        elif task["status"] != "in-progress":
            raise FhirError(
                Category.CONFLICT,
                f"Task/{task_id} is {task['status']}: only an accepted or in-progress consult can be "
                "reported (accept it first)",
                expression=["DiagnosticReport.basedOn"],
                code="business-rule",
            )
        tasks.set_report(task, version.res_id, now)
        tasks.set_status(task, "completed", now)
        await self.write_task(conn, task_id, task, now)

    async def complete(
        self, conn: asyncpg.Connection, task_id: str, report: Resource, if_match: int | None = None
    ) -> Version:
        """``$complete``: store the DiagnosticReport (defaults from the Task); it completes the Task."""
        now = self.clock()
        async with conn.transaction():
            current, task = await self.read_task(conn, task_id)
            if if_match is not None and current.version != if_match:
                raise _stale(task_id, if_match, current.version)
            if task["status"] not in {"accepted", "in-progress"}:
                workflow.check(
                    task_id,
                    workflow.State(task["status"], ref_id(task.get("owner"), "PractitionerRole")),
                    workflow.State("completed", ref_id(task.get("owner"), "PractitionerRole")),
                    has_report=True,
                )
            report = report_defaults(report, task, now)
            await self.repository(conn, now).create("DiagnosticReport", report)
            return await self.repository(conn).read("Task", task_id)


def _stale(task_id: str, if_match: int, version: int) -> FhirError:
    return FhirError(
        Category.PRECONDITION,
        f"Version conflict: If-Match {if_match} but Task/{task_id} is at version {version}",
        code="conflict",
    )


REPORT_FINAL = frozenset({"final", "amended", "corrected"})


def check_report(report: Resource) -> None:
    problems = []
    if not report.get("conclusion") and not report.get("presentedForm"):
        problems.append(
            ("a consult report needs a conclusion or a presentedForm", "DiagnosticReport.conclusion")
        )
    if not report.get("resultsInterpreter"):
        problems.append(
            ("a consult report names its reader in resultsInterpreter", "DiagnosticReport.resultsInterpreter")
        )
    if not first_ref(report.get("imagingStudy"), "ImagingStudy"):
        problems.append(("a consult report names the ImagingStudy it reads", "DiagnosticReport.imagingStudy"))
    if problems:
        raise FhirError(
            Category.INVALID, issues=[Issue(message, (path,), "required") for message, path in problems]
        )


def report_defaults(report: Resource, task: Resource, now: datetime) -> Resource:
    out = copy.deepcopy(report)
    out.setdefault("status", "final")
    out.setdefault(
        "code",
        {
            "coding": [
                {"system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study"}
            ],
            "text": "远程影像会诊报告",
        },
    )
    based_on = out.setdefault("basedOn", [])
    for ref in task.get("basedOn") or []:
        if ref_id(ref, "ServiceRequest") and ref not in based_on:
            based_on.append(copy.deepcopy(ref))
    if "subject" not in out and task.get("for"):
        out["subject"] = copy.deepcopy(task["for"])
    if not out.get("imagingStudy") and task.get("focus"):
        out["imagingStudy"] = [copy.deepcopy(task["focus"])]
    if not out.get("resultsInterpreter") and task.get("owner"):
        out["resultsInterpreter"] = [copy.deepcopy(task["owner"])]
    out.setdefault("issued", format_instant(now))
    return out
