"""Conditional update, patch and delete on ``[base]/[type]?criteria``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError, information_outcome
from phix.fhir.deps import repository
from phix.fhir.http import (
    json_body,
    json_response,
    known_type,
    negotiate,
    prefer,
    resource_body,
    version_from_etag,
)
from phix.fhir.interactions.patch import JSON_PATCH, applier, parse_patch
from phix.fhir.responses import write_response

router = APIRouter()


def _criteria(request: Request) -> str:
    return request.url.query


@router.put("/{res_type}", name="conditional-update")
async def conditional_update(request: Request, res_type: str) -> Response:
    negotiate(request)
    known_type(res_type)
    resource = resource_body(await json_body(request), res_type)
    if_match = version_from_etag(request.headers.get("if-match"))
    async with repository(request) as repo:
        version, created = await request.app.state.conditional.update(
            repo, res_type, resource, _criteria(request), if_match=if_match
        )
    if created:
        return write_response(request, version, 201, f"Created {res_type}/{version.res_id}")
    return write_response(
        request, version, 200, f"Updated {res_type}/{version.res_id} to version {version.version}"
    )


@router.patch("/{res_type}", name="conditional-patch")
async def conditional_patch(request: Request, res_type: str) -> Response:
    negotiate(request)
    known_type(res_type)
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media != JSON_PATCH:
        raise FhirError(
            Category.UNSUPPORTED_MEDIA, f"PATCH takes {JSON_PATCH}; got '{media or 'no Content-Type'}'"
        )
    operations = parse_patch(await request.body())
    if_match = version_from_etag(request.headers.get("if-match"))
    async with repository(request) as repo:
        version = await request.app.state.conditional.patch(
            repo, res_type, _criteria(request), applier(operations), if_match=if_match
        )
    return write_response(request, version, 200, f"Patched {res_type}/{version.res_id}")


@router.delete("/{res_type}", name="conditional-delete")
async def conditional_delete(request: Request, res_type: str) -> Response:
    negotiate(request)
    known_type(res_type)
    settings = request.app.state.settings.fhir
    async with repository(request) as repo:
        deleted = await request.app.state.conditional.delete(
            repo, res_type, _criteria(request), multiple=settings.conditional_delete_multiple
        )
    if prefer(request, "return") == "operationoutcome":
        names = ", ".join(f"{v.res_type}/{v.res_id}" for v in deleted) or "nothing"
        return json_response(request, information_outcome(f"Deleted {names}"), 200)
    headers = {"ETag": deleted[0].etag} if len(deleted) == 1 else {}
    return Response(status_code=204, headers=headers)
