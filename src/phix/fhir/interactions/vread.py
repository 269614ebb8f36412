"""vread: ``GET [base]/[type]/[id]/_history/[vid]``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError
from phix.fhir.deps import repository
from phix.fhir.http import json_response, known_type, negotiate, version_headers

router = APIRouter()


@router.get("/{res_type}/{res_id}/_history/{vid}", name="vread")
async def vread(request: Request, res_type: str, res_id: str, vid: str) -> Response:
    negotiate(request)
    known_type(res_type)
    if not vid.isdigit():
        raise FhirError(Category.NOT_FOUND, f"Version '{vid}' of {res_type}/{res_id} is not known")
    async with repository(request) as repo:
        version = await repo.vread(res_type, res_id, int(vid))
    assert version.body is not None
    return json_response(request, version.body, 200, version_headers(version))
