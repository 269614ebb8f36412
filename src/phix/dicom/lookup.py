"""FHIR look-ups the gateway needs, through the search engine's finder when it is installed.

``finder`` is ``app.state.finder`` (``phix.search.integration.Finder``): ``(conn, type, params)``
-> ``[(rid, id)]``. Without it (search domain not installed) a JSON containment scan over
``resources`` gives the same answers, slower.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg
import orjson

from phix.identity import systems

Finder = Callable[..., Awaitable[list[tuple[int, str]]]]


def _escape(value: str) -> str:
    """FHIR search value escaping (``\\``, ``|``, ``,``, ``$``)."""
    for ch in ("\\", "|", ",", "$"):
        value = value.replace(ch, "\\" + ch)
    return value


async def find_ids(
    conn: asyncpg.Connection,
    finder: Finder | None,
    res_type: str,
    params: list[tuple[str, str]],
    containment: dict[str, Any],
    limit: int = 10,
) -> list[str]:
    if finder is not None:
        return [res_id for _, res_id in await finder(conn, res_type, params, limit=limit)]
    rows = await conn.fetch(
        "SELECT res_id FROM resources WHERE res_type = $1 AND NOT deleted"
        " AND convert_from(body, 'UTF8')::jsonb @> $2::jsonb ORDER BY rid LIMIT $3",
        res_type,
        orjson.dumps(containment).decode(),
        limit,
    )
    return [r["res_id"] for r in rows]


async def read(conn: asyncpg.Connection, res_type: str, res_id: str) -> dict[str, Any] | None:
    body = await conn.fetchval(
        "SELECT body FROM resources WHERE res_type = $1 AND res_id = $2 AND NOT deleted", res_type, res_id
    )
    if body is None:
        return None
    parsed: dict[str, Any] = orjson.loads(body)
    return parsed


async def exists(conn: asyncpg.Connection, reference: str) -> bool:
    res_type, _, res_id = reference.partition("/")
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM resources WHERE res_type = $1 AND res_id = $2 AND NOT deleted", res_type, res_id
        )
    )


async def patients_by_identifier(
    conn: asyncpg.Connection, finder: Finder | None, system: str, value: str
) -> list[str]:
    return await find_ids(
        conn,
        finder,
        "Patient",
        [("identifier", f"{system}|{_escape(value)}")],
        {"identifier": [{"system": system, "value": value}]},
    )


async def imaging_studies_by_uid(
    conn: asyncpg.Connection, finder: Finder | None, study_uid: str
) -> list[str]:
    value = f"urn:oid:{study_uid}"
    return await find_ids(
        conn,
        finder,
        "ImagingStudy",
        [("identifier", f"{systems.DICOM_UID}|{_escape(value)}")],
        {"identifier": [{"system": systems.DICOM_UID, "value": value}]},
    )


async def order_priority(
    conn: asyncpg.Connection, finder: Finder | None, accession_system: str, accession: str
) -> str | None:
    """The priority of the ServiceRequest (teleconsultation order) carrying this accession number."""
    ids = await find_ids(
        conn,
        finder,
        "ServiceRequest",
        [("identifier", f"{accession_system}|{_escape(accession)}")],
        {"identifier": [{"system": accession_system, "value": accession}]},
        limit=1,
    )
    if not ids:
        return None
    request = await read(conn, "ServiceRequest", ids[0])
    priority = (request or {}).get("priority")
    return priority if isinstance(priority, str) else None


def _active_today(resource: dict[str, Any], today: date) -> bool:
    if resource.get("active") is False:
        return False
    period = resource.get("period") or {}
    start, end = str(period.get("start") or "")[:10], str(period.get("end") or "")[:10]
    iso = today.isoformat()
    return (not start or start <= iso) and (not end or iso <= end)


def _has_role(resource: dict[str, Any], role: str) -> bool:
    for concept in resource.get("code") or []:
        for coding in concept.get("coding") or []:
            if coding.get("code") == role:
                return True
    return False


async def contracted_organizations(
    conn: asyncpg.Connection,
    finder: Finder | None,
    participant: str,
    role: str,
    today: date,
) -> list[str]:
    """Organizations with an active ``role`` OrganizationAffiliation where ``participant`` takes part."""
    ids = await find_ids(
        conn,
        finder,
        "OrganizationAffiliation",
        [("participating-organization", participant)],
        {"participatingOrganization": {"reference": participant}},
        limit=100,
    )
    found: list[str] = []
    for res_id in ids:
        resource = await read(conn, "OrganizationAffiliation", res_id)
        if resource is None or not _active_today(resource, today) or not _has_role(resource, role):
            continue
        reference = (resource.get("organization") or {}).get("reference")
        if isinstance(reference, str) and reference not in found:
            found.append(reference)
    return found
