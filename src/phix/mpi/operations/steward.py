"""Stewardship over FHIR: the review queue, manual decisions, link history and the event feed.

========================================  =========================================================
``GET  Patient/$mpi-review``              open review items as a Bundle of Task (``status``,
                                          ``_count``, ``_cursor``); ``?id=N`` one Task
``POST Patient/$mpi-resolve``             ``review`` (id), ``decision`` link|merge|distinct,
                                          ``target`` (a candidate resident), ``reason``
``POST Patient/$mpi-link``                ``patient`` (source), ``resident``, ``reason``
``POST Patient/$mpi-unlink``              ``patient``, ``reason``
``POST Patient/$mpi-merge``               ``source`` (resident merged away), ``target``, ``reason``
``POST Patient/$mpi-unmerge``             ``resident`` (the merged one), ``reason``
``POST Patient/$mpi-distinct``            ``patient`` and ``other`` (records or residents), ``reason``
``GET  Patient/[id]/$mpi-history``        link history of a record or resident (Bundle of AuditEvent)
``GET  Patient/[id]/$mpi-status``         link state: resident, grade, score, flags, pending, reviews
``GET  Patient/$mpi-events``              the event feed after ``since`` (Bundle of AuditEvent)
========================================  =========================================================

The acting user is the request's client (``X-Phix-Client``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError
from phix.fhir.bundle import bundle, link, page_url
from phix.fhir.deps import request_context
from phix.fhir.http import base_url, json_response, negotiate
from phix.mpi import links, review
from phix.mpi.operations.audit import audit_event
from phix.mpi.operations.params import Inputs, parameters, read_inputs, reference_id
from phix.mpi.stewardship import Steward

router = APIRouter()


async def _inputs(request: Request, op: str, known: tuple[str, ...]) -> Inputs:
    negotiate(request)
    inputs = await read_inputs(request, op)
    inputs.check_known(known)
    return inputs


def _steward(request: Request) -> Steward:
    return Steward(request.app.state.mpi, request_context(request).client)


def _patient(inputs: Inputs, name: str) -> str:
    found = reference_id(inputs.text(name, required=True), name, inputs.op)
    assert found is not None
    return found


# The manual decisions: operation -> (Steward method, the inputs naming Patients, in its order).
DECISIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "$mpi-link": ("link", ("patient", "resident")),
    "$mpi-unlink": ("unlink", ("patient",)),
    "$mpi-merge": ("merge", ("source", "target")),
    "$mpi-unmerge": ("unmerge", ("resident",)),
    "$mpi-distinct": ("distinct", ("patient", "other")),
}


def _decision_route(op: str, method: str, patients: tuple[str, ...]) -> Any:
    async def decide(request: Request) -> Response:
        inputs = await _inputs(request, op, (*patients, "reason"))
        ids = [_patient(inputs, name) for name in patients]
        async with request.app.state.db.pool.acquire() as conn:
            result = await getattr(_steward(request), method)(conn, *ids, inputs.text("reason"))
        return json_response(request, parameters(result))

    return decide


for _op, (_method, _patients) in DECISIONS.items():
    router.add_api_route(
        f"/Patient/{_op}",
        _decision_route(_op, _method, _patients),
        methods=["POST"],
        name=f"operation-{_op[1:]}",
    )


@router.post("/Patient/$mpi-resolve", name="operation-mpi-resolve")
async def mpi_resolve(request: Request) -> Response:
    inputs = await _inputs(request, "$mpi-resolve", ("review", "decision", "target", "reason"))
    review_id = inputs.integer("review", default=0, low=1, high=2**62)
    decision = str(inputs.text("decision", required=True))
    target = reference_id(inputs.text("target"), "target", inputs.op)
    async with request.app.state.db.pool.acquire() as conn:
        result = await _steward(request).resolve(conn, review_id, decision, target, inputs.text("reason"))
    return json_response(request, parameters(result))


@router.get("/Patient/$mpi-review", name="operation-mpi-review")
async def mpi_review(request: Request) -> Response:
    inputs = await _inputs(request, "$mpi-review", ("id", "status", "_count", "_cursor"))
    status = inputs.text("status") or "open"
    if status not in ("open", "resolved", "obsolete", "all"):
        raise FhirError(
            Category.INCORRECT, "status must be open, resolved, obsolete or all", expression=["status"]
        )
    count = inputs.integer("_count", default=50, high=500)
    cursor = inputs.integer("_cursor", default=0, low=0, high=2**62)
    item_id = inputs.integer("id", default=0, low=0, high=2**62)
    base = base_url(request)
    async with request.app.state.db.pool.acquire() as conn:
        if item_id:
            row = await review.item(conn, item_id)
            if row is None:
                raise FhirError(Category.NOT_FOUND, f"Review item {item_id} is not known")
            return json_response(request, review.as_task(row))
        rows = await review.items(conn, None if status == "all" else status, cursor, count + 1)
    entries = [
        {
            "fullUrl": f"{base}/Patient/$mpi-review?id={r['id']}",
            "resource": review.as_task(r),
            "search": {"mode": "match"},
        }
        for r in rows[:count]
    ]
    links_ = [link("self", str(request.url))]
    if len(rows) > count:
        params = [("status", status), ("_count", str(count)), ("_cursor", str(rows[count - 1]["id"]))]
        links_.append(link("next", page_url(base, "Patient/$mpi-review", params)))
    return json_response(request, bundle("searchset", entries, links_, None))


@router.get("/Patient/{res_id}/$mpi-history", name="operation-mpi-history")
async def mpi_history(request: Request, res_id: str) -> Response:
    await _inputs(request, "$mpi-history", ())
    async with request.app.state.db.pool.acquire() as conn:
        found = await links.history(conn, res_id)
    if not found:
        raise FhirError(Category.NOT_FOUND, f"The patient index has no history for Patient/{res_id}")
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/AuditEvent/mpi-{e['seq']}", "resource": audit_event(e)} for e in found]
    return json_response(request, bundle("collection", entries, [], None))


@router.get("/Patient/$mpi-events", name="operation-mpi-events")
async def mpi_events(request: Request) -> Response:
    inputs = await _inputs(request, "$mpi-events", ("since", "_count"))
    since = inputs.integer("since", default=0, low=0, high=2**62)
    count = inputs.integer("_count", default=100, high=1000)
    async with request.app.state.db.pool.acquire() as conn:
        found = await links.events(conn, since, count)
    base = base_url(request)
    entries = [{"fullUrl": f"{base}/AuditEvent/mpi-{e['seq']}", "resource": audit_event(e)} for e in found]
    after = found[-1]["seq"] if found else since
    links_ = [
        link("next", page_url(base, "Patient/$mpi-events", [("since", str(after)), ("_count", str(count))]))
    ]
    return json_response(request, bundle("collection", entries, links_, None))


@router.get("/Patient/{res_id}/$mpi-status", name="operation-mpi-status")
async def mpi_status(request: Request, res_id: str) -> Response:
    await _inputs(request, "$mpi-status", ())
    async with request.app.state.db.pool.acquire() as conn:
        record = await conn.fetchrow("SELECT * FROM mpi_record WHERE patient_id = $1", res_id)
        golden = await conn.fetchrow("SELECT * FROM mpi_golden WHERE golden_id = $1", res_id)
        pending = await conn.fetchrow("SELECT * FROM mpi_pending WHERE patient_id = $1", res_id)
        reviews = await conn.fetch(
            "SELECT id FROM mpi_review WHERE patient_id = $1 AND status = 'open'", res_id
        )
    result: dict[str, Any] = {}
    if golden is not None:
        result = {"state": f"resident ({golden['status']})", "resident": res_id, "merged": None}
        if golden["merged_into"]:
            result["into"] = golden["merged_into"]
    elif pending is not None:
        result = {"state": "pending", "attempts": pending["attempts"], "error": pending["last_error"]}
        if record is not None and record["golden_id"]:
            result["resident"] = record["golden_id"]
    elif record is not None:
        result = {"state": "linked" if record["golden_id"] else "unlinked", "resident": record["golden_id"],
                  "grade": record["grade"], "manual": record["manual"], "score": record["score"],
                  "rule": record["rule"],
                  "flag": list(record["flags"])}  # fmt: skip
    else:
        raise FhirError(Category.NOT_FOUND, f"Patient/{res_id} is not known to the patient index")
    result["review"] = [r["id"] for r in reviews]
    return json_response(request, parameters(result))
