"""Building and editing consult Task resources (pure functions on FHIR JSON)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from phix.consult import codes
from phix.consult.codes import (
    ESCALATION_EXTENSION,
    EVENT_SYSTEM,
    SYSTEM_AUTHOR,
    business_status,
    consult_code,
    ref_id,
    reference,
)
from phix.storage.repository import format_instant

Resource = dict[str, Any]


def imaging_study_of(sr: Resource) -> dict[str, Any] | None:
    """The ImagingStudy a consult is about: the first ImagingStudy in ``supportingInfo``."""
    for item in sr.get("supportingInfo") or []:
        if ref_id(item, "ImagingStudy"):
            return {"reference": item["reference"]} | (
                {"display": item["display"]} if "display" in item else {}
            )
    return None


def build_task(
    sr_id: str,
    sr: Resource,
    *,
    requester: dict[str, Any] | None,
    priority: str,
    requested_at: datetime,
    received_at: datetime,
    due_at: datetime,
    owner: dict[str, Any] | None,
) -> Resource:
    task: Resource = {
        "resourceType": "Task",
        "status": "requested",
        "businessStatus": business_status(codes.ASSIGNED if owner else codes.UNASSIGNED),
        "intent": "order",
        "priority": priority,
        "code": consult_code(),
        "description": "远程影像会诊 / Imaging teleconsultation",
        "basedOn": [reference("ServiceRequest", sr_id)],
        "authoredOn": format_instant(requested_at),
        "lastModified": format_instant(received_at),
        "restriction": {"period": {"start": format_instant(received_at), "end": format_instant(due_at)}},
    }
    focus = imaging_study_of(sr)
    if focus:
        task["focus"] = focus
    for source, target in (("subject", "for"), ("encounter", "encounter")):
        if isinstance(sr.get(source), dict):
            task[target] = copy.deepcopy(sr[source])
    if requester:
        task["requester"] = requester
    if owner:
        task["owner"] = owner
    if sr.get("reasonCode"):
        task["reasonCode"] = copy.deepcopy(sr["reasonCode"][0])
    if sr.get("reasonReference"):
        task["reasonReference"] = copy.deepcopy(sr["reasonReference"][0])
    if owner is None:
        add_note(
            task,
            received_at,
            "暂无可用的签约阅片医师，会诊待分配。/ "
            "No contracted reader is available; the consult awaits one.",
        )
    return task


def add_note(task: Resource, at: datetime, text: str) -> None:
    task.setdefault("note", []).append(
        {"authorString": SYSTEM_AUTHOR, "time": format_instant(at), "text": text}
    )


def set_business(task: Resource, code: str, at: datetime) -> None:
    task["businessStatus"] = business_status(code)
    task["lastModified"] = format_instant(at)


def set_owner(task: Resource, role_id: str | None, at: datetime) -> None:
    if role_id is None:
        task.pop("owner", None)
    else:
        task["owner"] = reference("PractitionerRole", role_id)
    task["lastModified"] = format_instant(at)


def set_deadline(task: Resource, due_at: datetime) -> None:
    period = task.setdefault("restriction", {}).setdefault("period", {})
    period["end"] = format_instant(due_at)


def set_status(task: Resource, status: str, at: datetime, reason: str | None = None) -> None:
    task["status"] = status
    task["lastModified"] = format_instant(at)
    if reason:
        task["statusReason"] = {"text": reason}
    else:
        task.pop("statusReason", None)
    period = task.setdefault("executionPeriod", {})
    if status == "in-progress":
        period.setdefault("start", format_instant(at))
    elif status == "completed":
        period.setdefault("start", format_instant(at))
        period["end"] = format_instant(at)
    if not period:
        task.pop("executionPeriod")


def set_report(task: Resource, report_id: str, at: datetime) -> None:
    outputs = [o for o in task.get("output") or [] if not ref_id(o.get("valueReference"), "DiagnosticReport")]
    outputs.append(
        {
            "type": {"coding": [{"system": EVENT_SYSTEM, "code": "report", "display": "Consult report"}]},
            "valueReference": reference("DiagnosticReport", report_id),
        }
    )
    task["output"] = outputs
    set_business(task, codes.REPORTED, at)


def report_of(task: Resource) -> str | None:
    for output in task.get("output") or []:
        found = ref_id(output.get("valueReference"), "DiagnosticReport")
        if found:
            return found
    return None


def add_escalation(
    task: Resource,
    *,
    at: datetime,
    action: str,
    missed_due: datetime,
    from_role: str | None,
    to_role: str | None,
) -> None:
    parts: list[dict[str, Any]] = [
        {"url": "at", "valueDateTime": format_instant(at)},
        {"url": "action", "valueCode": action},
        {"url": "missedDeadline", "valueDateTime": format_instant(missed_due)},
    ]
    if from_role:
        parts.append({"url": "from", "valueReference": reference("PractitionerRole", from_role)})
    if to_role:
        parts.append({"url": "to", "valueReference": reference("PractitionerRole", to_role)})
    task.setdefault("extension", []).append({"url": ESCALATION_EXTENSION, "extension": parts})


def escalation_count(task: Resource) -> int:
    return sum(1 for ext in task.get("extension") or [] if ext.get("url") == ESCALATION_EXTENSION)
