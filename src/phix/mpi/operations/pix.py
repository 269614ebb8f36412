"""``Patient/$ihe-pix`` (IHE PIXm ITI-83 style cross-reference).

``sourceIdentifier=system|value`` (any recognised system: resident ID, citizen card, virtual card,
an institution's MRN or visit card), optional ``targetSystem`` (repeatable). Output: Parameters
with one ``targetIdentifier`` per identifier of the resident's records and one ``targetId`` per
Patient (the golden record and every source; with ``targetSystem``, only sources holding an
identifier of those systems). Errors follow PIXm: unknown system 400, unknown identifier 404,
unknown target system 403.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError
from phix.fhir.http import json_response, negotiate
from phix.mpi import links
from phix.mpi.features import OTHER, RESIDENT_ID, canonical_value, identifier_kind
from phix.mpi.operations.params import read_inputs

router = APIRouter()


def parse_token(token: str, name: str) -> tuple[str, str]:
    system, sep, value = token.partition("|")
    if not sep or not system or not value:
        raise FhirError(Category.INCORRECT, f"'{name}' must be system|value", expression=[name])
    return system, value


async def lookup(conn: asyncpg.Connection, system: str, value: str) -> list[str]:
    """Residents holding ``system|value`` on any of their records."""
    kind, _ = identifier_kind(system)
    rows = await conn.fetch(
        """
        SELECT DISTINCT r.golden_id FROM mpi_identifier i JOIN mpi_record r ON r.rid = i.rid
        WHERE i.value = $1 AND i.system = $2 AND r.golden_id IS NOT NULL
        """,
        canonical_value(kind, value),
        system,
    )
    return sorted(r["golden_id"] for r in rows)


async def identifiers_of(conn: asyncpg.Connection, golden_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """
            SELECT r.patient_id, i.system, i.value, i.raw, i.kind, i.valid FROM mpi_record r
            JOIN mpi_identifier i ON i.rid = r.rid WHERE r.golden_id = $1 ORDER BY r.patient_id, i.system
            """,
            golden_id,
        )
    )


def known_system(system: str) -> bool:
    return identifier_kind(system)[0] != OTHER


@router.get("/Patient/$ihe-pix", name="operation-ihe-pix")
@router.post("/Patient/$ihe-pix", include_in_schema=False)
async def ihe_pix(request: Request) -> Response:
    negotiate(request)
    inputs = await read_inputs(request, "$ihe-pix")
    inputs.check_known(("sourceIdentifier", "targetSystem"))
    system, value = parse_token(str(inputs.text("sourceIdentifier", required=True)), "sourceIdentifier")
    if not known_system(system):
        raise FhirError(
            Category.INCORRECT,
            "sourceIdentifier Assigning Authority not found",
            expression=["sourceIdentifier"],
            code="code-invalid",
        )
    targets = [str(t) for t in inputs.all("targetSystem")]
    for target in targets:
        if not known_system(target):
            raise FhirError(
                Category.FORBIDDEN,
                f"targetSystem not found: {target}",
                expression=["targetSystem"],
                code="code-invalid",
            )
    async with request.app.state.db.pool.acquire() as conn:
        residents = await lookup(conn, system, value)
        if not residents:
            raise FhirError(
                Category.NOT_FOUND,
                "sourceIdentifier Patient Identifier not found",
                expression=["sourceIdentifier"],
            )
        if len(residents) > 1:
            raise FhirError(
                Category.CONFLICT,
                f"sourceIdentifier names {len(residents)} residents: {', '.join(residents)}",
            )
        golden = residents[0]
        rows = await identifiers_of(conn, golden)
    return json_response(request, cross_reference(golden, rows, targets))


def cross_reference(golden: str, rows: list[asyncpg.Record], targets: list[str]) -> dict[str, Any]:
    wanted = set(targets)
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    patients: list[str] = [] if wanted else [golden]
    for row in rows:
        if wanted and row["system"] not in wanted:
            continue
        shown = row["value"] if row["kind"] == RESIDENT_ID and row["valid"] else row["raw"]
        if (row["system"], shown) not in seen:
            seen.add((row["system"], shown))
            identifier = {"system": row["system"], "value": shown}
            out.append({"name": "targetIdentifier", "valueIdentifier": identifier})
        if row["patient_id"] not in patients:
            patients.append(row["patient_id"])
    for pid in patients:
        out.append({"name": "targetId", "valueReference": {"reference": f"Patient/{pid}"}})
    return {"resourceType": "Parameters", "parameter": out}


__all__ = ["cross_reference", "identifiers_of", "links", "lookup", "parse_token", "router"]
