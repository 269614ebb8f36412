"""``Patient/$match`` (FHIR R4): residents matching a Patient, scored and graded.

Inputs: ``resource`` (a Patient, required), ``onlyCertainMatches`` (boolean), ``count``
(integer). Output: a ``searchset`` Bundle of golden Patients, best first, each with
``search.score`` (the match probability) and the ``match-grade`` extension (certain, probable,
possible). With ``onlyCertainMatches`` only a single certain match is returned; several certain
matches return none and an OperationOutcome entry says so.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError
from phix.fhir.bundle import bundle, fragment
from phix.fhir.http import base_url, json_response, negotiate
from phix.fhir.validation import validate
from phix.mpi import store
from phix.mpi.decision import Candidate, best_per_golden
from phix.mpi.engine import Engine
from phix.mpi.features import from_patient
from phix.mpi.operations.params import read_inputs

router = APIRouter()

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


async def match(
    conn: asyncpg.Connection, engine: Engine, resource: dict[str, Any], exclude: str | None = None
) -> list[Candidate]:
    """Residents matching ``resource``, best first (grade ``none`` left out). Reads only."""
    f = from_patient(exclude or "$match", resource)
    rows = await store.candidates(
        conn, list(f.hashes), engine.model.blocking.max_per_key, engine.common_keys()
    )
    pool = {pid: (gid, cf) for _, pid, gid, cf in rows if pid != exclude}
    goldens = sorted({g for g, _ in pool.values()})
    active = {g for g, (state, _) in (await _statuses(conn, goldens)).items() if state == "active"}
    if f.name and f.name.readings:
        await engine.names.prefetch(conn, [f.name.key])
    scorer = engine.scorer()
    items = list(pool.items())[: engine.model.blocking.max_candidates]
    scored = [(g, pid, scorer.score(f, cf)) for pid, (g, cf) in items if g in active]
    return [c for c in best_per_golden(scored) if c.score.grade != "none"]


async def _statuses(conn: asyncpg.Connection, goldens: list[str]) -> dict[str, tuple[str, str | None]]:
    from phix.mpi.residents import statuses

    return await statuses(conn, goldens)


@router.post("/Patient/$match", name="operation-match")
async def patient_match(request: Request) -> Response:
    negotiate(request)
    inputs = await read_inputs(request, "$match")
    inputs.check_known(("resource", "onlyCertainMatches", "count"))
    resource = inputs.resources.get("resource")
    if resource is None:
        raise FhirError(
            Category.INCORRECT,
            "$match: parameter 'resource' (a Patient) is required",
            expression=["resource"],
        )
    if resource.get("resourceType") != "Patient":
        raise FhirError(
            Category.INCORRECT, "$match: 'resource' must be a Patient", expression=["resource.resourceType"]
        )
    validate("Patient", resource)
    only_certain = inputs.boolean("onlyCertainMatches")
    count = inputs.integer("count", default=10, high=200)
    state = request.app.state
    engine: Engine = state.mpi
    async with state.db.pool.acquire() as conn:
        found = await match(conn, engine, resource)
        outcome = None
        if only_certain:
            certain = [c for c in found if c.score.grade == "certain"]
            if len(certain) > 1:
                outcome = f"{len(certain)} residents match with certainty; none returned (onlyCertainMatches)"
                certain = []
            found = certain
        found = found[:count]
        rows = await conn.fetch(
            "SELECT res_id, body FROM resources"
            " WHERE res_type = 'Patient' AND res_id = ANY($1::text[]) AND NOT deleted",
            [c.golden_id for c in found],
        )
    bodies = {r["res_id"]: r["body"] for r in rows}
    base = base_url(request)
    entries: list[dict[str, Any]] = []
    for c in found:
        if c.golden_id not in bodies:
            continue
        entries.append(
            {
                "fullUrl": f"{base}/Patient/{c.golden_id}",
                "resource": fragment(bodies[c.golden_id]),
                "search": {
                    "extension": [{"url": MATCH_GRADE, "valueCode": c.score.grade}],
                    "mode": "match",
                    "score": round(c.score.probability(engine.model), 6),
                },
            }
        )
    if outcome:
        entries.append(
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "information", "code": "multiple-matches", "diagnostics": outcome}
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
    return json_response(
        request, bundle("searchset", entries, [], len([e for e in entries if "fullUrl" in e]))
    )
