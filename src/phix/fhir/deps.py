"""Per-request wiring: the repository bound to a connection and the request's context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request

from phix.fhir.http import base_url
from phix.storage.context import RequestContext
from phix.storage.repository import Repository


def request_context(request: Request) -> RequestContext:
    return RequestContext(
        request_id=getattr(request.state, "request_id", "-"),
        client=request.headers.get("x-phix-client", "anonymous"),
        base_url=base_url(request),
    )


@asynccontextmanager
async def repository(request: Request) -> AsyncIterator[Repository]:
    state = request.app.state
    async with state.db.pool.acquire() as conn:
        yield Repository(conn, request_context(request), state.listeners, state.clock)
