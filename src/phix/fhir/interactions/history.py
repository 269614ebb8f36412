"""history: instance, type and system level, with ``_count``, ``_since``, ``_at`` and next links."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError
from phix.fhir.bundle import bundle, history_entry, link, page_url
from phix.fhir.dates import parse_instant_range
from phix.fhir.http import base_url, json_response, known_type, negotiate
from phix.storage.history import HistoryQuery, history

router = APIRouter()

_ALLOWED = {"_count", "_since", "_at", "_cursor", "_format", "_pretty", "_list", "_sort"}


def _query(request: Request, res_type: str | None, res_id: str | None) -> HistoryQuery:
    params = request.query_params
    unknown = sorted(set(params.keys()) - _ALLOWED)
    if unknown:
        raise FhirError(Category.INCORRECT, f"Unknown history parameter(s): {', '.join(unknown)}")
    settings = request.app.state.settings.fhir
    count = settings.history_default_count
    if "_count" in params:
        raw = params["_count"]
        if not raw.isdigit():
            raise FhirError(Category.INCORRECT, f"_count must be a non-negative integer, got '{raw}'")
        count = min(int(raw), settings.max_count)
    since: datetime | None = None
    if "_since" in params:
        since = parse_instant_range(params["_since"], "_since")[0]
    at_low = at_high = None
    if "_at" in params:
        at_low, at_high = parse_instant_range(params["_at"], "_at")
    cursor = params.get("_cursor")
    if cursor is not None and not cursor.isdigit():
        raise FhirError(Category.INCORRECT, f"Invalid paging cursor '{cursor}'")
    return HistoryQuery(
        res_type=res_type,
        res_id=res_id,
        since=since,
        at_low=at_low,
        at_high=at_high,
        before_seq=int(cursor) if cursor else None,
        count=count,
    )


async def _history(request: Request, res_type: str | None, res_id: str | None, path: str) -> Response:
    negotiate(request)
    query = _query(request, res_type, res_id)
    base = base_url(request)
    async with request.app.state.db.pool.acquire() as conn:
        if res_id is not None:
            exists = await conn.fetchval(
                "SELECT 1 FROM resources WHERE res_type = $1 AND res_id = $2", res_type, res_id
            )
            if not exists:
                raise FhirError(Category.NOT_FOUND, f"Resource {res_type}/{res_id} is not known")
        page = await history(conn, query, with_total=res_id is not None)
    keep = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    links = [link("self", page_url(base, path, list(request.query_params.multi_items())))]
    if page.next_cursor is not None:
        links.append(link("next", page_url(base, path, [*keep, ("_cursor", str(page.next_cursor))])))
    entries = [history_entry(base, v) for v in page.versions]
    return json_response(request, bundle("history", entries, links, page.total))


@router.get("/_history", name="history-system")
async def history_system(request: Request) -> Response:
    return await _history(request, None, None, "_history")


@router.get("/{res_type}/_history", name="history-type")
async def history_type(request: Request, res_type: str) -> Response:
    known_type(res_type)
    return await _history(request, res_type, None, f"{res_type}/_history")


@router.get("/{res_type}/{res_id}/_history", name="history-instance")
async def history_instance(request: Request, res_type: str, res_id: str) -> Response:
    known_type(res_type)
    return await _history(request, res_type, res_id, f"{res_type}/{res_id}/_history")
