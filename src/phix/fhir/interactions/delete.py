"""delete: ``DELETE [base]/[type]/[id]`` writes a tombstone version; a later read gives 410."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import information_outcome
from phix.fhir.deps import repository
from phix.fhir.http import json_response, known_type, negotiate, prefer, version_from_etag

router = APIRouter()


@router.delete("/{res_type}/{res_id}", name="delete")
async def delete(request: Request, res_type: str, res_id: str) -> Response:
    negotiate(request)
    known_type(res_type)
    if_match = version_from_etag(request.headers.get("if-match"))
    async with repository(request) as repo:
        version = await repo.delete(res_type, res_id, if_match=if_match)
    headers = {"ETag": version.etag} if version is not None else {}
    if prefer(request, "return") == "operationoutcome":
        message = (
            f"Deleted {res_type}/{res_id}"
            if version
            else f"Nothing to delete: {res_type}/{res_id} is already deleted or never existed"
        )
        return json_response(request, information_outcome(message), 200, headers)
    return Response(status_code=204, headers=headers)
