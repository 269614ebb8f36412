"""update: ``PUT [base]/[type]/[id]``, including update-as-create and If-Match locking."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.fhir.deps import repository
from phix.fhir.http import json_body, known_type, negotiate, resource_body, valid_id, version_from_etag
from phix.fhir.responses import write_response

router = APIRouter()


@router.put("/{res_type}/{res_id}", name="update")
async def update(request: Request, res_type: str, res_id: str) -> Response:
    negotiate(request)
    known_type(res_type)
    valid_id(res_id)
    resource = resource_body(await json_body(request), res_type, res_id)
    if_match = version_from_etag(request.headers.get("if-match"))
    async with repository(request) as repo:
        version, created = await repo.update(res_type, res_id, resource, if_match=if_match)
    if created:
        return write_response(request, version, 201, f"Created {res_type}/{res_id}")
    return write_response(request, version, 200, f"Updated {res_type}/{res_id} to version {version.version}")
