"""Who may read a consult: PractitionerRoles at sites contracted with the requesting hospital.

A contract is an active ``OrganizationAffiliation`` (``organization`` = the reading site,
``participatingOrganization`` = the requester, ``period`` covering now, one of the configured
``code``\\ s). A reader is an active ``PractitionerRole`` of such a site with one of the configured
specialties. Resources are read straight from the store (a few hundred rows at most), so a new
contract or reader is effective on its next write, without a cache to invalidate.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from phix.consult.codes import has_coding, ref_id
from phix.consult.settings import ConsultSettings
from phix.errors import FhirError
from phix.fhir.dates import parse_instant_range

_MENTIONING = """
SELECT res_id, body FROM resources
WHERE res_type = $1 AND NOT deleted AND convert_from(body, 'UTF8') LIKE ANY($2::text[])
"""

_LOAD = """
SELECT owner_role, count(*) AS open FROM consult_tasks
WHERE owner_role = ANY($1::text[]) AND status IN ('requested', 'accepted', 'in-progress')
GROUP BY owner_role
"""

_LAST = """
SELECT role_id, max(at) AS last FROM consult_assignments WHERE role_id = ANY($1::text[]) GROUP BY role_id
"""


@dataclass(frozen=True)
class Reader:
    role_id: str
    site_org: str
    open_consults: int = 0
    last_assigned: datetime | None = None


async def _mentioning(conn: asyncpg.Connection, res_type: str, org_ids: Collection[str]) -> list[Any]:
    patterns = [f"%Organization/{org}%" for org in org_ids]
    rows = await conn.fetch(_MENTIONING, res_type, patterns)
    return [(row["res_id"], orjson.loads(row["body"])) for row in rows]


def _in_period(period: Any, now: datetime) -> bool:
    if not isinstance(period, dict):
        return True
    try:
        if isinstance(period.get("start"), str) and parse_instant_range(period["start"])[0] > now:
            return False
        return not (isinstance(period.get("end"), str) and parse_instant_range(period["end"])[1] <= now)
    except FhirError:
        return False


def _codes_match(concepts: Any, wanted: list[str]) -> bool:
    if not wanted:
        return True
    return any(has_coding(concepts, *token.split("|", 1)) for token in wanted if "|" in token)


async def contracted_sites(
    conn: asyncpg.Connection, requester_org: str, now: datetime, settings: ConsultSettings
) -> list[str]:
    """Sites (Organization ids) with an active contract to read for ``requester_org``."""
    sites = set()
    for _, body in await _mentioning(conn, "OrganizationAffiliation", [requester_org]):
        if body.get("active") is False or not _in_period(body.get("period"), now):
            continue
        if ref_id(body.get("participatingOrganization"), "Organization") != requester_org:
            continue
        if not _codes_match(body.get("code"), settings.contract_codes):
            continue
        site = ref_id(body.get("organization"), "Organization")
        if site:
            sites.add(site)
    return sorted(sites)


async def readers_at(
    conn: asyncpg.Connection, sites: Collection[str], now: datetime, settings: ConsultSettings
) -> list[Reader]:
    if not sites:
        return []
    found = []
    for role_id, body in await _mentioning(conn, "PractitionerRole", sites):
        site = ref_id(body.get("organization"), "Organization")
        if (
            site is None
            or site not in sites
            or body.get("active") is False
            or not _in_period(body.get("period"), now)
        ):
            continue
        if _codes_match(body.get("specialty"), settings.reader_specialties):
            found.append((role_id, site))
    if not found:
        return []
    ids = [role for role, _ in found]
    load = {r["owner_role"]: r["open"] for r in await conn.fetch(_LOAD, ids)}
    last = {r["role_id"]: r["last"] for r in await conn.fetch(_LAST, ids)}
    return [Reader(role, site, load.get(role, 0), last.get(role)) for role, site in found]


def choose(readers: list[Reader], policy: str) -> Reader | None:
    """Least-loaded (ties: assigned longest ago) or round-robin (assigned longest ago)."""
    if not readers:
        return None

    def key(reader: Reader) -> tuple[int, float, str]:
        last = reader.last_assigned.timestamp() if reader.last_assigned else float("-inf")
        load = reader.open_consults if policy == "least-loaded" else 0
        return load, last, reader.role_id

    return min(readers, key=key)


async def pick_reader(
    conn: asyncpg.Connection,
    requester_org: str | None,
    now: datetime,
    settings: ConsultSettings,
    *,
    exclude: Collection[str] = (),
    site: str | None = None,
) -> Reader | None:
    """The reader for a new or reassigned consult, or None when no contracted reader is free."""
    if requester_org is None:
        return None
    sites = await contracted_sites(conn, requester_org, now, settings)
    if site is not None:
        sites = [s for s in sites if s == site]
    readers = [r for r in await readers_at(conn, sites, now, settings) if r.role_id not in exclude]
    return choose(readers, settings.assignment)


async def organization_of_role(conn: asyncpg.Connection, role_id: str) -> str | None:
    body = await conn.fetchval(
        "SELECT body FROM resources WHERE res_type = 'PractitionerRole' AND res_id = $1 AND NOT deleted",
        role_id,
    )
    if body is None:
        return None
    return ref_id(orjson.loads(body).get("organization"), "Organization")
