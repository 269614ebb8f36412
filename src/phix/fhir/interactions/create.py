"""create: ``POST [base]/[type]`` -> 201 with Location, ETag and Last-Modified; ``If-None-Exist``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.fhir.deps import repository
from phix.fhir.http import json_body, known_type, negotiate, resource_body
from phix.fhir.responses import write_response

router = APIRouter()


@router.post("/{res_type}", name="create")
async def create(request: Request, res_type: str) -> Response:
    negotiate(request)
    known_type(res_type)
    resource = resource_body(await json_body(request), res_type)
    criteria = request.headers.get("if-none-exist")
    async with repository(request) as repo:
        if criteria:
            version, created = await request.app.state.conditional.create(repo, res_type, resource, criteria)
            if not created:
                return write_response(request, version, 200, "Matched an existing resource; nothing created")
        else:
            version = await repo.create(res_type, resource)
    return write_response(request, version, 201, f"Created {res_type}/{version.res_id}")
