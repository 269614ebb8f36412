"""read: ``GET [base]/[type]/[id]`` with conditional read (If-None-Match, If-Modified-Since)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.fhir.deps import repository
from phix.fhir.http import (
    if_modified_since,
    json_response,
    known_type,
    negotiate,
    version_from_etag,
    version_headers,
)

router = APIRouter()


@router.get("/{res_type}/{res_id}", name="read")
async def read(request: Request, res_type: str, res_id: str) -> Response:
    negotiate(request)
    known_type(res_type)
    async with repository(request) as repo:
        version = await repo.read(res_type, res_id)
    headers = version_headers(version)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and version_from_etag(if_none_match, "If-None-Match") == version.version:
        return Response(status_code=304, headers=headers)
    since = if_modified_since(request)
    if if_none_match is None and since is not None and version.last_updated.replace(microsecond=0) <= since:
        return Response(status_code=304, headers=headers)
    assert version.body is not None
    return json_response(request, version.body, 200, headers)
