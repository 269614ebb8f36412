"""Task operations of the teleconsultation workflow: ``POST [base]/Task/[id]/$<name>``.

=========  ===================================  =====================================================
operation  input (a Parameters body, optional)  effect
=========  ===================================  =====================================================
$accept    -                                    requested -> accepted
$start     -                                    accepted -> in-progress
$complete  ``report``: DiagnosticReport         stores the report, which completes the Task
           (or the DiagnosticReport as body)
$reject    ``reason``: string                   -> rejected; reassigned to another reader if any
$cancel    ``reason``: string                   -> cancelled
$reassign  ``owner``: Reference(PractitionerRole)  -> requested with that reader (default: the
           (optional), ``reason``: string          least-loaded other contracted reader)
=========  ===================================  =====================================================

Each answers 200 with the Task as it is now (``Prefer`` honoured); an invalid transition is a 409
OperationOutcome. ``If-Match`` guards against acting on a stale Task.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.consult.codes import OPERATION_BASE, ref_id
from phix.consult.service import ConsultService
from phix.errors import Category, FhirError
from phix.fhir.http import json_body, negotiate, valid_id, version_from_etag
from phix.fhir.responses import write_response

router = APIRouter()

INPUTS: dict[str, frozenset[str]] = {
    "accept": frozenset(),
    "start": frozenset(),
    "complete": frozenset({"report"}),
    "reject": frozenset({"reason"}),
    "cancel": frozenset({"reason"}),
    "reassign": frozenset({"owner", "reason"}),
}


def definitions() -> dict[str, str]:
    """Operation name -> OperationDefinition canonical, for the CapabilityStatement."""
    return {name: f"{OPERATION_BASE}/Task-{name}" for name in INPUTS}


async def _parameters(request: Request, name: str) -> dict[str, Any]:
    """The operation's inputs by name; 400 for a body that is not Parameters or an unknown input."""
    if not (await request.body()).strip():
        return {}
    body = await json_body(request)
    if name == "complete" and isinstance(body, dict) and body.get("resourceType") == "DiagnosticReport":
        return {"report": body}
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError(
            Category.INCORRECT,
            f"${name} takes a Parameters resource as its body",
            expression=["resourceType"],
        )
    found: dict[str, Any] = {}
    for index, param in enumerate(body.get("parameter") or []):
        pname = param.get("name") if isinstance(param, dict) else None
        if pname not in INPUTS[name]:
            allowed = ", ".join(sorted(INPUTS[name])) or "none"
            raise FhirError(
                Category.INCORRECT,
                f"${name} has no input '{pname}' (inputs: {allowed})",
                expression=[f"Parameters.parameter[{index}].name"],
            )
        if "resource" in param:
            found[pname] = param["resource"]
        elif "valueReference" in param:
            found[pname] = param["valueReference"]
        else:
            value = next((v for k, v in param.items() if k.startswith("value")), None)
            found[pname] = value.get("text") if isinstance(value, dict) else value
    return found


def _service(request: Request) -> ConsultService:
    service: ConsultService = request.app.state.consult
    return service


async def _run(request: Request, task_id: str, name: str) -> Response:
    negotiate(request)
    valid_id(task_id)
    params = await _parameters(request, name)
    if_match = version_from_etag(request.headers.get("if-match"))
    service = _service(request)
    async with request.app.state.db.pool.acquire() as conn:
        if name == "complete":
            report = params.get("report")
            if not isinstance(report, dict) or report.get("resourceType") != "DiagnosticReport":
                raise FhirError(
                    Category.INCORRECT,
                    "$complete needs the DiagnosticReport (parameter 'report', or as the body)",
                    expression=["Parameters.parameter.where(name='report')"],
                )
            version = await service.complete(conn, task_id, report, if_match)
        else:
            owner = params.get("owner")
            role = ref_id(owner, "PractitionerRole") if owner is not None else None
            if owner is not None and role is None:
                raise FhirError(
                    Category.INCORRECT,
                    "owner must reference a PractitionerRole",
                    expression=["Parameters.parameter.where(name='owner')"],
                )
            reason = params.get("reason")
            version = await service.act(
                conn,
                task_id,
                name,
                reason=str(reason) if reason is not None else None,
                owner=role,
                if_match=if_match,
            )
    return write_response(request, version, 200, f"${name} applied to Task/{task_id}")


def _route(name: str) -> None:
    async def operation(request: Request, task_id: str) -> Response:
        return await _run(request, task_id, name)

    operation.__name__ = f"task_{name}"
    router.add_api_route(f"/Task/{{task_id}}/${name}", operation, methods=["POST"], name=f"operation-{name}")


for _name in INPUTS:
    _route(_name)
