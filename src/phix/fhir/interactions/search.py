"""search: type level (GET and POST ``_search``), system level and compartment search.

The query is the URL's parameters (and, for POST ``_search``, the form-encoded body's). ``Prefer:
handling=lenient`` skips unknown parameters (they are left out of the ``self`` link); the default
(strict) answers 400 with an OperationOutcome.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from phix.errors import Category, FhirError
from phix.fhir.http import base_url, json_response, negotiate, prefer
from phix.search.service import search


class _TypeRoute(APIRoute):
    """Matches only when the path's type segments look like resource types (``Patient``, ``*``).

    So ``/{type}`` and ``/{type}/{id}/{type}`` never swallow ``/$operation`` or ``/_history``
    paths of routers mounted after this one.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match != Match.NONE:
            params = child.get("path_params", {})
            for key in ("res_type", "comp_type"):
                value = params.get(key)
                if value is not None and not (value[:1].isupper() or (key == "res_type" and value == "*")):
                    return Match.NONE, {}
        return match, child


router = APIRouter(route_class=_TypeRoute)

_FORM = "application/x-www-form-urlencoded"


async def _params(request: Request, post: bool) -> list[tuple[str, str]]:
    params = list(request.query_params.multi_items())
    if post:
        content_type = request.headers.get("content-type", _FORM).split(";", 1)[0].strip().lower()
        body = await request.body()
        if body.strip():
            if content_type != _FORM:
                raise FhirError(
                    Category.UNSUPPORTED_MEDIA, f"POST _search needs {_FORM}, not '{content_type}'"
                )
            try:
                params.extend(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
            except (UnicodeDecodeError, ValueError) as exc:
                raise FhirError(Category.MALFORMED, f"Malformed form body: {exc}") from None
    return params


async def run_search(
    state: Any,
    conn: asyncpg.Connection,
    res_type: str | None,
    params: list[tuple[str, str]],
    *,
    base: str,
    compartment: tuple[str, str] | None = None,
    lenient: bool = False,
) -> dict[str, Any]:
    """One page of a search as a searchset Bundle (the search routes and GET entries of bundles)."""
    settings = state.settings.fhir
    # Domains may rewrite criteria first (the patient index expands a resident to its sources).
    for expand in getattr(state, "search_expanders", ()):
        params = await expand(conn, state.registry, res_type, params)
    return await search(
        conn,
        state.registry,
        res_type,
        params,
        base_url=base,
        compartment=compartment,
        lenient=lenient,
        default_count=settings.default_count,
        max_count=settings.max_count,
    )


async def _search(
    request: Request, res_type: str | None, compartment: tuple[str, str] | None = None, post: bool = False
) -> Response:
    negotiate(request)
    params = await _params(request, post)
    state = request.app.state
    lenient = prefer(request, "handling") == "lenient"
    async with state.db.pool.acquire() as conn:
        result = await run_search(
            state, conn, res_type, params, base=base_url(request), compartment=compartment, lenient=lenient
        )
    return json_response(request, result)


@router.get("", name="search-system")
async def search_system(request: Request) -> Response:
    return await _search(request, None)


@router.get("/", include_in_schema=False)
async def search_system_slash(request: Request) -> Response:
    return await _search(request, None)


@router.post("/_search", name="search-system-post")
async def search_system_post(request: Request) -> Response:
    return await _search(request, None, post=True)


@router.get("/{res_type}", name="search-type")
async def search_type(request: Request, res_type: str) -> Response:
    return await _search(request, res_type)


@router.post("/{res_type}/_search", name="search-type-post")
async def search_type_post(request: Request, res_type: str) -> Response:
    return await _search(request, res_type, post=True)


@router.get("/{comp_type}/{comp_id}/{res_type}", name="search-compartment")
async def search_compartment(request: Request, comp_type: str, comp_id: str, res_type: str) -> Response:
    return await _search(request, res_type, compartment=(comp_type, comp_id))
