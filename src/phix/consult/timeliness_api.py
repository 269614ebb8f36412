"""``GET [base]/$consult-timeliness``: the timeliness report as a FHIR Parameters resource.

Query parameters: ``since`` / ``until`` (FHIR dates; default the last 30 days, on the request
time; completions and escalations are counted in the window, open and overdue consults whatever
their age), ``site`` (Organization), ``reader`` (PractitionerRole), ``priority``, ``_count``
(consults listed, default 100, at most 1000).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.consult.codes import OPERATION_BASE, PRIORITIES
from phix.consult.timeliness import Query, Report, Tally, timeliness
from phix.errors import Category, FhirError
from phix.fhir.dates import parse_instant_range
from phix.fhir.http import json_response, negotiate
from phix.storage.repository import format_instant

router = APIRouter()
DEFINITION = f"{OPERATION_BASE}/consult-timeliness"
_KNOWN = {"since", "until", "site", "reader", "priority", "_count", "_format", "_pretty"}


def _seconds(value: float | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"value": round(value, 3), "unit": "s", "system": "http://unitsofmeasure.org", "code": "s"}


def _part(name: str, kind: str, value: Any) -> dict[str, Any] | None:
    return None if value is None else {"name": name, f"value{kind}": value}


def _ref(res_type: str, res_id: str | None) -> dict[str, str] | None:
    return {"reference": f"{res_type}/{res_id}"} if res_id else None


def _when(value: datetime | None) -> str | None:
    return format_instant(value) if value is not None else None


def _parts(*parts: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [p for p in parts if p is not None]


def _tally(tally: Tally) -> list[dict[str, Any]]:
    return _parts(
        _part("open", "Integer", tally.open),
        _part("overdueOpen", "Integer", tally.overdue_open),
        _part("overdueTotal", "Integer", tally.overdue_total),
        _part("completed", "Integer", tally.completed),
        _part("completedLate", "Integer", tally.completed_late),
        _part("meanTurnaround", "Quantity", _seconds(tally.mean_turnaround)),
        _part("medianTurnaround", "Quantity", _seconds(tally.median_turnaround)),
    )


def to_parameters(report: Report, q: Query) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "period", "valuePeriod": {"start": format_instant(q.since), "end": format_instant(q.until)}},
        {"name": "generated", "valueInstant": format_instant(q.now)},
    ]
    for row in report.consults:
        params.append(
            {
                "name": "consult",
                "part": _parts(
                    _part("task", "Reference", _ref("Task", row["task_id"])),
                    _part("serviceRequest", "Reference", _ref("ServiceRequest", row["sr_id"])),
                    _part("requester", "Reference", _ref("Organization", row["requester_org"])),
                    _part("site", "Reference", _ref("Organization", row["site_org"])),
                    _part("reader", "Reference", _ref("PractitionerRole", row["owner_role"])),
                    _part("priority", "Code", row["priority"]),
                    _part("status", "Code", row["status"]),
                    _part("businessStatus", "Code", row["business_status"]),
                    _part("requestedAt", "DateTime", _when(row["requested_at"])),
                    _part("dueAt", "DateTime", _when(row["due_at"])),
                    _part("firstDueAt", "DateTime", _when(row["first_due_at"])),
                    _part("completedAt", "DateTime", _when(row["completed_at"])),
                    _part("turnaround", "Quantity", _seconds(row["turnaround"])),
                    _part("overdue", "Boolean", row["overdue"]),
                    _part("metDeadline", "Boolean", row["met_deadline"]),
                    _part("escalations", "Integer", row["escalations"]),
                    _part("report", "Reference", _ref("DiagnosticReport", row["report_id"])),
                ),
            }
        )
    for (reader, site), tally in sorted(
        report.readers.items(), key=lambda kv: (kv[0][1] or "", kv[0][0] or "")
    ):
        head = _parts(
            _part("reader", "Reference", _ref("PractitionerRole", reader)),
            _part("site", "Reference", _ref("Organization", site)),
            None if reader else _part("unassigned", "Boolean", True),
        )
        params.append({"name": "reader", "part": head + _tally(tally)})
    for site, tally in sorted(report.sites.items(), key=lambda kv: kv[0] or ""):
        head = _parts(
            _part("site", "Reference", _ref("Organization", site)),
            None if site else _part("unassigned", "Boolean", True),
        )
        params.append({"name": "site", "part": head + _tally(tally)})
    return {"resourceType": "Parameters", "parameter": params}


def _date(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    return parse_instant_range(value, name)[0] if value else None


def _id(value: str | None, res_type: str) -> str | None:
    if value is None:
        return None
    return value.removeprefix(f"{res_type}/")


def parse_query(request: Request, now: datetime) -> Query:
    for key in request.query_params:
        if key not in _KNOWN:
            raise FhirError(
                Category.INCORRECT,
                f"$consult-timeliness has no parameter '{key}' ({', '.join(sorted(_KNOWN))})",
                expression=[key],
            )
    default = Query.default(now)
    priority = request.query_params.get("priority")
    if priority is not None and priority not in PRIORITIES:
        raise FhirError(
            Category.INCORRECT, f"priority must be one of {', '.join(PRIORITIES)}", expression=["priority"]
        )
    count_text = request.query_params.get("_count", "100")
    if not count_text.isdigit():
        raise FhirError(Category.INCORRECT, "_count must be a non-negative integer", expression=["_count"])
    return Query(
        since=_date(request, "since") or default.since,
        until=_date(request, "until") or default.until,
        now=now,
        site=_id(request.query_params.get("site"), "Organization"),
        reader=_id(request.query_params.get("reader"), "PractitionerRole"),
        priority=priority,
        count=min(int(count_text), 1000),
    )


@router.get("/$consult-timeliness", name="operation-consult-timeliness")
async def consult_timeliness(request: Request) -> Response:
    negotiate(request)
    q = parse_query(request, request.app.state.clock())
    async with request.app.state.db.pool.acquire() as conn:
        report = await timeliness(conn, q)
    return json_response(request, to_parameters(report, q))
