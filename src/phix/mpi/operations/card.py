"""``Patient/$resolve-card``: one-card resolution for front desks.

Inputs: ``card`` (whatever the reader yields, required), ``institution`` (this institution's code,
e.g. ``ptsdyyy``, required), ``system`` (the card's identifier system, when the desk knows it),
``register`` (boolean: create this institution's record when it has none), ``mrn`` (the local
record number to give it; issued as ``MPI########`` when absent) and ``organization`` (a
Reference for ``managingOrganization``).

What a card may yield (see :func:`read_card`): a resident ID (18 or 15 characters), a citizen
card number (16 digits, ``3503`` ...), a virtual health card QR payload (the 32-hex token, bare,
as ``EHC:<token>``, in a URL query ``?ehc=<token>`` or a JSON object with ``ehc`` / ``cardNo`` /
``idNo``), or another institution's card or MRN (looked up across all institutions).

Output: Parameters ``resident`` (the golden Patient), ``matchedBy`` (the identifier found),
``patient`` and ``mrn`` (this institution's record, when it has one) and ``registered``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError
from phix.fhir.deps import request_context
from phix.fhir.http import json_response, negotiate
from phix.identity import systems
from phix.mpi import normalize
from phix.mpi.features import CITIZEN_CARD, RESIDENT_ID, VIRTUAL_CARD, canonical_value, identifier_kind
from phix.mpi.operations.params import read_inputs
from phix.mpi.operations.register import register

router = APIRouter()

_HEX32 = re.compile(r"^[0-9A-Fa-f]{32}$")
_CITIZEN = re.compile(r"^3503[0-9]{12}$")
_INSTITUTION = re.compile(r"^[a-z0-9][a-z0-9\-]{1,40}$")
_JSON_KEYS = {
    "idNo": RESIDENT_ID, "idCard": RESIDENT_ID, "residentId": RESIDENT_ID, "sfzh": RESIDENT_ID,
    "ehc": VIRTUAL_CARD, "ehcId": VIRTUAL_CARD, "virtualCard": VIRTUAL_CARD, "cardNo": VIRTUAL_CARD,
    "citizenCard": CITIZEN_CARD, "smk": CITIZEN_CARD,
}  # fmt: skip
_SYSTEM = {
    RESIDENT_ID: systems.RESIDENT_ID,
    CITIZEN_CARD: systems.CITIZEN_CARD,
    VIRTUAL_CARD: systems.VIRTUAL_CARD,
}


def read_card(payload: str) -> tuple[str | None, str]:
    """(identifier system or None for "any institution's card", value) of a card payload."""
    text = payload.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise FhirError(
                Category.INCORRECT, "card: the QR payload is not valid JSON", expression=["card"]
            ) from None
        for key, kind in _JSON_KEYS.items():
            if isinstance(data, dict) and isinstance(data.get(key), str) and data[key].strip():
                return _SYSTEM[kind], data[key].strip()
        raise FhirError(
            Category.INCORRECT, "card: the QR payload names no known card field", expression=["card"]
        )
    if "://" in text:
        query = parse_qs(urlsplit(text).query)
        for key in ("ehc", "card", "cardNo"):
            if query.get(key):
                return systems.VIRTUAL_CARD, query[key][0]
        raise FhirError(
            Category.INCORRECT, "card: the QR link carries no card (ehc=...)", expression=["card"]
        )
    upper = text.upper()
    for prefix in ("EHC:", "PTEHC:"):
        if upper.startswith(prefix):
            return systems.VIRTUAL_CARD, text[len(prefix) :].strip()
    folded = normalize.fold_identifier(text)
    if _HEX32.match(folded):
        return systems.VIRTUAL_CARD, folded
    if _CITIZEN.match(folded):
        return systems.CITIZEN_CARD, folded
    parsed = normalize.resident_id(text)
    if parsed.valid:
        return systems.RESIDENT_ID, parsed.id18 or parsed.norm
    if re.fullmatch(r"[0-9]{17}[0-9X]|[0-9]{15}", parsed.norm):
        raise FhirError(
            Category.INVALID,
            f"card: '{text}' looks like a resident ID but fails validation ({', '.join(parsed.flags)})",
            expression=["card"],
            code="value",
        )
    return None, folded


async def find(conn: asyncpg.Connection, system: str | None, value: str) -> list[asyncpg.Record]:
    """(golden_id, system, raw) of records holding the value (under ``system``, or any MRN/card)."""
    if system is not None:
        kind, _ = identifier_kind(system)
        return list(
            await conn.fetch(
                "SELECT DISTINCT r.golden_id, i.system, i.raw"
                " FROM mpi_identifier i JOIN mpi_record r ON r.rid = i.rid"
                " WHERE i.value = $1 AND i.system = $2 AND r.golden_id IS NOT NULL",
                canonical_value(kind, value),
                system,
            )
        )
    return list(
        await conn.fetch(
            "SELECT DISTINCT r.golden_id, i.system, i.raw"
            " FROM mpi_identifier i JOIN mpi_record r ON r.rid = i.rid"
            " WHERE i.value = $1 AND i.kind IN ('mrn', 'visit-card') AND r.golden_id IS NOT NULL",
            value,
        )
    )


async def local_records(conn: asyncpg.Connection, golden_id: str, institution: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT r.patient_id, i.raw FROM mpi_record r JOIN mpi_identifier i ON i.rid = r.rid"
            " WHERE r.golden_id = $1 AND i.system = $2 ORDER BY r.patient_id",
            golden_id,
            systems.mrn_system(institution),
        )
    )


@router.get("/Patient/$resolve-card", name="operation-resolve-card")
@router.post("/Patient/$resolve-card", include_in_schema=False)
async def resolve_card(request: Request) -> Response:
    negotiate(request)
    inputs = await read_inputs(request, "$resolve-card")
    inputs.check_known(("card", "institution", "system", "register", "mrn", "organization"))
    payload = str(inputs.text("card", required=True))
    institution = str(inputs.text("institution", required=True))
    if not _INSTITUTION.match(institution):
        raise FhirError(
            Category.INCORRECT,
            "institution must be an institution code like 'ptsdyyy'",
            expression=["institution"],
        )
    system = inputs.text("system")
    wanted = inputs.boolean("register")
    system, value = (system, payload) if system else read_card(payload)
    state = request.app.state
    async with state.db.pool.acquire() as conn:
        found = await find(conn, system, value)
        residents = sorted({r["golden_id"] for r in found})
        if not residents:
            raise FhirError(
                Category.NOT_FOUND,
                f"No resident holds this card ({system or 'any institution card'}|{value})",
                expression=["card"],
            )
        if len(residents) > 1:
            raise FhirError(
                Category.CONFLICT,
                f"The card names {len(residents)} residents ({', '.join(residents)});"
                " a steward must resolve this",
                expression=["card"],
            )
        golden = residents[0]
        out: list[dict[str, Any]] = [
            {"name": "resident", "valueReference": {"reference": f"Patient/{golden}"}},
            {
                "name": "matchedBy",
                "valueIdentifier": {"system": found[0]["system"], "value": found[0]["raw"]},
            },
        ]
        local = await local_records(conn, golden, institution)
        registered = False
        if not local and wanted:
            ctx = request_context(request)
            pid, mrn = await register(
                conn, state, ctx, golden, institution, inputs.text("mrn"), inputs.text("organization")
            )
            local = [{"patient_id": pid, "raw": mrn}]
            registered = True
    for row in local:
        out.append({"name": "patient", "valueReference": {"reference": f"Patient/{row['patient_id']}"}})
        out.append(
            {
                "name": "mrn",
                "valueIdentifier": {"system": systems.mrn_system(institution), "value": row["raw"]},
            }
        )
    out.append({"name": "registered", "valueBoolean": registered})
    return json_response(request, {"resourceType": "Parameters", "parameter": out})
