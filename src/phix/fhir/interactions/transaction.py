"""batch and transaction: ``POST [base]`` with a Bundle of type batch or transaction."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.fhir.bundle import bundle
from phix.fhir.bundle_entries import parse_bundle
from phix.fhir.deps import repository
from phix.fhir.http import base_url, json_body, json_response, negotiate, prefer
from phix.fhir.interactions.search import run_search
from phix.fhir.transaction import BundleProcessor

router = APIRouter()


@router.post("", name="batch-transaction")
@router.post("/", include_in_schema=False)
async def batch_or_transaction(request: Request) -> Response:
    negotiate(request)
    kind, entries = parse_bundle(await json_body(request))
    include_resource = prefer(request, "return") == "representation"
    state = request.app.state
    searcher = None
    if getattr(state, "registry", None) is not None:  # the search engine is installed
        base = base_url(request)

        async def searcher(conn: asyncpg.Connection, res_type: str, params: list[tuple[str, str]]) -> Any:
            return await run_search(state, conn, res_type, params, base=base)

    async with repository(request) as repo:
        processor = BundleProcessor(repo, state.conditional, searcher)
        if kind == "transaction":
            outcomes = await processor.transaction(entries)
            response_entries = [o.response(include_resource) for o in outcomes]
        else:
            response_entries = await processor.batch(entries, include_resource)
    return json_response(request, bundle(f"{kind}-response", response_entries, [], None))
