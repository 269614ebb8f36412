"""Invalid transitions and bad consult input answer with a whole, exact OperationOutcome."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from phix.consult import workflow
from phix.consult.workflow import State
from phix.errors import FhirError

from .world import consult_request, parameters, report, task_of


def _outcome(diagnostics: str, expression: str, code: str = "business-rule") -> dict[str, object]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": code, "diagnostics": diagnostics, "expression": [expression]}
        ],
    }


async def _task(client: httpx.AsyncClient) -> str:
    sr = (await client.post("/ServiceRequest", json=consult_request())).json()
    return task_of((await client.get("/$consult-timeliness")).json(), sr["id"])


async def test_start_before_accept_is_409(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    response = await cclient.post(f"/Task/{task_id}/$start")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json() == _outcome(
        f"Task/{task_id}: invalid transition requested -> in-progress; allowed from requested: accepted, "
        "cancelled, rejected, requested (reassignment to another reader)",
        "Task.status",
    )
    assert (await cclient.get(f"/Task/{task_id}")).json()["meta"]["versionId"] == "1"  # nothing written


async def test_complete_before_accept_is_409_and_stores_no_report(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    response = await cclient.post(f"/Task/{task_id}/$complete", json=parameters(report=report()))
    assert response.status_code == 409
    assert response.json() == _outcome(
        f"Task/{task_id}: invalid transition requested -> completed; allowed from requested: accepted, "
        "cancelled, rejected, requested (reassignment to another reader)",
        "Task.status",
    )
    assert (await cclient.get("/DiagnosticReport/_history")).json().get("entry", []) == []


async def test_a_completed_task_is_final(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    await cclient.post(f"/Task/{task_id}/$accept")
    await cclient.post(f"/Task/{task_id}/$complete", json=report())
    response = await cclient.post(f"/Task/{task_id}/$cancel", json=parameters(reason="too late"))
    assert response.status_code == 409
    assert response.json() == _outcome(
        f"Task/{task_id}: invalid transition completed -> cancelled; "
        "allowed from completed: none (final state)",
        "Task.status",
    )


async def test_accept_twice_is_a_no_op_but_going_back_is_409(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    assert (await cclient.post(f"/Task/{task_id}/$accept")).status_code == 200
    again = await cclient.post(f"/Task/{task_id}/$accept")
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == "2"  # nothing new written
    task = (await cclient.get(f"/Task/{task_id}")).json()
    back = await cclient.put(f"/Task/{task_id}", json=task | {"status": "requested"})
    assert back.status_code == 409
    assert back.json() == _outcome(
        f"Task/{task_id}: invalid transition accepted -> requested; allowed from accepted: cancelled, "
        "in-progress, rejected, requested (reassignment to another reader)",
        "Task.status",
    )


async def test_plain_put_to_completed_without_report_is_409(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    await cclient.post(f"/Task/{task_id}/$accept")
    await cclient.post(f"/Task/{task_id}/$start")
    task = (await cclient.get(f"/Task/{task_id}")).json()
    response = await cclient.put(f"/Task/{task_id}", json=task | {"status": "completed"})
    assert response.status_code == 409
    assert response.json() == _outcome(
        f"Task/{task_id}: completion needs the DiagnosticReport in Task.output (use $complete)", "Task.output"
    )


async def test_owner_change_without_returning_to_requested_is_409(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    await cclient.post(f"/Task/{task_id}/$accept")
    task = (await cclient.get(f"/Task/{task_id}")).json()
    other = "role-r2" if task["owner"]["reference"].endswith("role-r1") else "role-r1"
    response = await cclient.put(
        f"/Task/{task_id}", json=task | {"owner": {"reference": f"PractitionerRole/{other}"}}
    )
    assert response.status_code == 409
    assert response.json() == _outcome(
        f"Task/{task_id}: invalid reassignment from accepted to accepted: a new owner returns the Task to "
        "requested, from accepted, in-progress, rejected, requested only",
        "Task.owner",
    )


async def test_if_match_on_an_operation(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    response = await cclient.post(f"/Task/{task_id}/$accept", headers={"If-Match": 'W/"7"'})
    assert response.status_code == 412
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "conflict",
                "diagnostics": f"Version conflict: If-Match 7 but Task/{task_id} is at version 1",
            }
        ],
    }


async def test_unknown_operation_input_is_400(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    response = await cclient.post(f"/Task/{task_id}/$accept", json=parameters(reason="x"))
    assert response.status_code == 400
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": "$accept has no input 'reason' (inputs: none)",
                "expression": ["Parameters.parameter[0].name"],
            }
        ],
    }


async def test_operation_on_an_unknown_task_is_404(cclient: httpx.AsyncClient) -> None:
    response = await cclient.post("/Task/nope/$accept")
    assert response.status_code == 404
    assert response.json()["issue"][0]["diagnostics"] == "Resource Task/nope is not known"


async def test_consult_without_imaging_study_is_422_and_writes_nothing(cclient: httpx.AsyncClient) -> None:
    body = consult_request()
    del body["supportingInfo"]
    response = await cclient.post("/ServiceRequest", json=body)
    assert response.status_code == 422
    assert response.json() == _outcome(
        "A teleconsultation ServiceRequest names its ImagingStudy in supportingInfo",
        "ServiceRequest.supportingInfo",
        "required",
    )
    assert (await cclient.get("/ServiceRequest/_history")).json().get("entry", []) == []


async def test_consult_requested_by_a_practitioner_is_422(cclient: httpx.AsyncClient) -> None:
    await cclient.put("/Practitioner/prac-1", json={"resourceType": "Practitioner", "id": "prac-1"})
    response = await cclient.post("/ServiceRequest", json=consult_request(requester="Practitioner/prac-1"))
    assert response.status_code == 422
    assert response.json() == _outcome(
        "The requester of a teleconsultation must be an Organization or a PractitionerRole, so that its "
        "hospital's contracts can be found",
        "ServiceRequest.requester",
    )


async def test_incomplete_report_is_422(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    await cclient.post(f"/Task/{task_id}/$accept")
    bare = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "x"}}
    response = await cclient.post(f"/Task/{task_id}/$complete", json=parameters(report=bare))
    assert response.status_code == 422
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "required",
                "diagnostics": "a consult report needs a conclusion or a presentedForm",
                "expression": ["DiagnosticReport.conclusion"],
            }
        ],
    }


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        (None, State("requested", None), "create"),
        (State("requested", None), State("requested", "r1"), "assign"),
        (State("requested", "r1"), State("accepted", "r1"), "transition"),
        (State("accepted", "r1"), State("in-progress", "r1"), "transition"),
        (State("in-progress", "r1"), State("requested", "r2"), "reassign"),
        (State("rejected", "r1"), State("requested", "r2"), "reassign"),
        (State("accepted", "r1"), State("accepted", "r1"), "update"),
    ],
)
def test_state_machine_accepts(before: State | None, after: State, kind: str) -> None:
    assert workflow.check("t", before, after, has_report=False) == kind


@pytest.mark.parametrize(
    ("before", "after", "has_report"),
    [
        (None, State("accepted", "r1"), False),
        (State("requested", None), State("accepted", None), False),
        (State("in-progress", "r1"), State("completed", "r1"), False),
        (State("requested", "r1"), State("completed", "r1"), True),
        (State("completed", "r1"), State("requested", "r2"), False),
        (State("cancelled", "r1"), State("accepted", "r1"), False),
        (State("rejected", "r1"), State("requested", "r1"), False),
        (State("requested", "r1"), State("on-hold", "r1"), False),
    ],
)
def test_state_machine_refuses(before: State | None, after: State, has_report: bool) -> None:
    with pytest.raises(FhirError) as caught:
        workflow.check("t", before, after, has_report=has_report)
    assert caught.value.status == 409


async def test_concurrent_complete_and_cancel_one_wins(cclient: httpx.AsyncClient) -> None:
    task_id = await _task(cclient)
    await cclient.post(f"/Task/{task_id}/$accept")
    await cclient.post(f"/Task/{task_id}/$start")
    responses = await asyncio.gather(
        cclient.post(f"/Task/{task_id}/$complete", json=report()),
        cclient.post(f"/Task/{task_id}/$cancel", json=parameters(reason="duplicate")),
        cclient.post(f"/Task/{task_id}/$start"),
    )
    codes = sorted(r.status_code for r in responses[:2])
    assert codes == [200, 409], [r.text for r in responses]
    assert responses[2].status_code in {200, 409}
    final = (await cclient.get(f"/Task/{task_id}")).json()["status"]
    assert final in {"completed", "cancelled"}
    reports = (await cclient.get("/DiagnosticReport/_history")).json().get("entry", [])
    assert len(reports) == (1 if final == "completed" else 0)  # a refused completion stores no report
