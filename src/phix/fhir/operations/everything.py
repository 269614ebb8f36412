"""``Patient/[id]/$everything``: the patient's compartment plus the resources it references.

With the patient index installed, a resident's golden record expands to every linked source
Patient, so a GP opening a resident sees the whole city record. Parameters: ``_since``, ``_type``,
``start``/``end`` (care dates, on each type's ``date`` parameter), ``_count`` and keyset paging.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError
from phix.fhir import fhirjson
from phix.fhir.bundle import bundle, fragment, link, page_url
from phix.fhir.dates import parse_instant_range
from phix.fhir.http import base_url, json_response, negotiate
from phix.fhir.references import iter_references, local_target
from phix.fhir.validation import resource_types

router = APIRouter()

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
_ALLOWED = {"_since", "_type", "start", "end", "_count", "_cursor", "_format", "_pretty"}

# The compartment's rids come first from the reference index (MATERIALIZED: otherwise the planner
# may walk resources in rid order and probe the index per row, ~50 ms at 100k resources), then the
# page is cut from them in rid order.
_COMPARTMENT_SQL = """
WITH members AS MATERIALIZED (
    SELECT s.rid FROM search_reference s
    WHERE s.ph = ANY($1::bigint[]) AND s.target_type = 'Patient' AND s.target_id = ANY($2::text[])
      AND s.rid > $3
    UNION
    SELECT p.rid FROM resources p
    WHERE $7 AND p.res_type = 'Patient' AND p.res_id = ANY($2::text[]) AND p.rid > $3
)
SELECT r.rid, r.res_type, r.res_id, r.body FROM members m JOIN resources r ON r.rid = m.rid
WHERE NOT r.deleted
  AND ($4::timestamptz IS NULL OR r.last_updated >= $4)
  AND (
    $5::timestamptz IS NULL
    OR NOT EXISTS (SELECT 1 FROM search_date d WHERE d.rid = r.rid AND d.ph = ANY($8::bigint[]))
    OR EXISTS (
      SELECT 1 FROM search_date d WHERE d.rid = r.rid AND d.ph = ANY($8::bigint[])
        AND d.high > $5 AND d.low < $6
    )
  )
ORDER BY r.rid
LIMIT $9
"""


def _types(value: str | None) -> set[str] | None:
    if not value:
        return None
    wanted = {t.strip() for t in value.split(",") if t.strip()}
    unknown = sorted(wanted - resource_types())
    if unknown:
        raise FhirError(Category.INCORRECT, f"_type: unknown resource type(s) {', '.join(unknown)}")
    return wanted


async def everything(
    conn: asyncpg.Connection, registry: Any, patient_ids: list[str], params: dict[str, str], count: int
) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]], int | None]:
    """(matches, included, next cursor): compartment resources and the resources they reference."""
    from phix.search.registry import param_hash

    types = _types(params.get("_type"))
    hashes: list[int] = []
    date_hashes: list[int] = []
    for res_type in registry.compartment_types("Patient"):
        if types is not None and res_type not in types:
            continue
        hashes.extend(param_hash(res_type, p) for p in registry.compartment_params("Patient", res_type))
        if registry.param(res_type, "date") is not None:
            date_hashes.append(param_hash(res_type, "date"))
    since = parse_instant_range(params["_since"], "_since")[0] if "_since" in params else None
    start = parse_instant_range(params["start"], "start")[0] if "start" in params else None
    end = parse_instant_range(params["end"], "end")[1] if "end" in params else None
    if end is not None and start is None:
        start = parse_instant_range("0001", "start")[0]
    if start is not None and end is None:
        end = parse_instant_range("9999", "end")[1]
    cursor = int(params.get("_cursor", "0"))
    rows = await conn.fetch(
        _COMPARTMENT_SQL,
        hashes,
        patient_ids,
        cursor,
        since,
        start,
        end,
        types is None or "Patient" in types,
        date_hashes,
        count + 1,
    )
    next_cursor = rows[count - 1]["rid"] if len(rows) > count else None
    rows = rows[:count]
    matches = [(f"{r['res_type']}/{r['res_id']}", r["body"]) for r in rows]
    seen = {key for key, _ in matches}
    wanted: dict[tuple[str, str], None] = {}
    for _, body in matches:
        for ref, _path in iter_references(fhirjson.loads(body)):
            target = local_target(ref["reference"])
            if target is not None and f"{target[0]}/{target[1]}" not in seen and target[0] != "Patient":
                wanted[target] = None
    included: list[tuple[str, bytes]] = []
    if wanted:
        keys = list(wanted)
        found = await conn.fetch(
            "SELECT r.res_type, r.res_id, r.body FROM resources r"
            " JOIN unnest($1::text[], $2::text[]) AS t(res_type, res_id)"
            " ON r.res_type = t.res_type AND r.res_id = t.res_id WHERE NOT r.deleted",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        included = [(f"{r['res_type']}/{r['res_id']}", r["body"]) for r in found]
    return matches, included, next_cursor


@router.get("/Patient/{res_id}/$everything", name="operation-everything")
@router.post("/Patient/{res_id}/$everything", include_in_schema=False)
async def patient_everything(request: Request, res_id: str) -> Response:
    negotiate(request)
    params = dict(request.query_params)
    unknown = sorted(set(params) - _ALLOWED)
    if unknown:
        raise FhirError(Category.INCORRECT, f"Unknown $everything parameter(s): {', '.join(unknown)}")
    state = request.app.state
    registry = getattr(state, "registry", None)
    if registry is None:
        raise FhirError(Category.UNSUPPORTED, "$everything needs the search index")
    settings = state.settings.fhir
    raw_count = params.get("_count", str(settings.default_count * 5))
    if not raw_count.isdigit() or int(raw_count) < 1:
        raise FhirError(Category.INCORRECT, f"_count must be a positive integer, got '{raw_count}'")
    if "_cursor" in params and not params["_cursor"].isdigit():
        raise FhirError(Category.INCORRECT, "invalid paging cursor")
    count = min(int(raw_count), settings.max_count)
    base = base_url(request)
    async with state.db.pool.acquire() as conn:
        current = await conn.fetchrow(
            "SELECT deleted FROM resources WHERE res_type = 'Patient' AND res_id = $1", res_id
        )
        if current is None:
            raise FhirError(Category.NOT_FOUND, f"Resource Patient/{res_id} is not known")
        if current["deleted"]:
            raise FhirError(Category.GONE, f"Resource Patient/{res_id} was deleted")
        expand = getattr(state, "resident_patients", None)
        patient_ids = await expand(conn, res_id) if expand is not None else [res_id]
        if res_id not in patient_ids:
            patient_ids = [res_id, *patient_ids]
        matches, included, next_cursor = await everything(conn, registry, patient_ids, params, count)
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/{key}", "resource": fragment(body), "search": {"mode": "match"}}
        for key, body in matches
    ]
    entries += [
        {"fullUrl": f"{base}/{key}", "resource": fragment(body), "search": {"mode": "include"}}
        for key, body in included
    ]
    path = f"Patient/{res_id}/$everything"
    keep = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    links = [link("self", page_url(base, path, list(request.query_params.multi_items())))]
    if next_cursor is not None:
        links.append(link("next", page_url(base, path, [*keep, ("_cursor", str(next_cursor))])))
    return json_response(request, bundle("searchset", entries, links, None))
