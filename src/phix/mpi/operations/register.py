"""Registering a resident at an institution (card resolution with ``register=true``).

The new source Patient copies the resident's golden demographics and resident-level identifiers,
gets the institution's MRN, and is linked to the resident the card named as a manual decision of
the front desk (so the engine never moves it).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from phix.errors import Category, FhirError
from phix.identity import systems
from phix.mpi import normalize
from phix.mpi.linkage import MpiListener
from phix.mpi.stewardship import Steward
from phix.storage.context import RequestContext
from phix.storage.repository import Repository

_COPIED = ("name", "gender", "birthDate", "address")


def new_record(
    golden: dict[str, Any], institution: str, mrn: str, organization: str | None
) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient"}
    mrn_type = {"coding": [{"system": systems.V2_0203, "code": systems.TYPE_MRN}], "text": "病历号"}
    ids = [{"use": "official", "type": mrn_type, "system": systems.mrn_system(institution), "value": mrn}]
    ids += [
        i
        for i in golden.get("identifier") or []
        if i.get("system") in (systems.RESIDENT_ID, systems.CITIZEN_CARD, systems.VIRTUAL_CARD)
    ]
    res["identifier"] = ids
    res["active"] = True
    for key in _COPIED:
        if key in golden:
            res[key] = golden[key]
    phones = [
        {k: v for k, v in t.items() if k != "rank"} for t in golden.get("telecom") or [] if t.get("rank") == 1
    ]
    if phones:
        res["telecom"] = phones
    if organization:
        ref = organization if "/" in organization else f"Organization/{organization}"
        res["managingOrganization"] = {"reference": ref}
    return res


async def register(
    conn: asyncpg.Connection,
    state: Any,
    ctx: RequestContext,
    golden_id: str,
    institution: str,
    mrn: str | None,
    organization: str | None,
) -> tuple[str, str]:
    """Create the institution's record of the resident; returns (Patient id, MRN)."""
    system = systems.mrn_system(institution)
    async with conn.transaction():
        if mrn is None:
            mrn = f"MPI{await conn.fetchval('SELECT nextval($1::regclass)', 'mpi_mrn_seq'):08d}"
        taken = await conn.fetchval(
            "SELECT 1 FROM mpi_identifier WHERE value = $1 AND system = $2",
            normalize.fold_identifier(mrn),
            system,
        )
        if taken:
            raise FhirError(
                Category.CONFLICT, f"MRN {mrn} is already used at {institution}", expression=["mrn"]
            )
        body = await conn.fetchval(
            "SELECT body FROM resources WHERE res_type = 'Patient' AND res_id = $1 AND NOT deleted", golden_id
        )
        if body is None:
            raise FhirError(Category.NOT_FOUND, f"Resident Patient/{golden_id} has no golden record")
        resource = new_record(orjson.loads(body), institution, mrn, organization)
        listeners = [li for li in state.listeners if not isinstance(li, MpiListener)]
        version = await Repository(conn, ctx, listeners, state.clock).create("Patient", resource)
        steward = Steward(state.mpi, ctx.client)
        await steward.attach(
            conn,
            version.res_id,
            version.rid,
            resource,
            golden_id,
            f"registered at {institution} by card resolution",
        )
        return version.res_id, mrn
