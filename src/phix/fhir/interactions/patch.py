"""patch: ``PATCH [base]/[type]/[id]`` with a JSON Patch (RFC 6902) document."""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError
from phix.fhir import fhirjson
from phix.fhir.deps import repository
from phix.fhir.http import known_type, negotiate, version_from_etag
from phix.fhir.responses import write_response

router = APIRouter()

JSON_PATCH = "application/json-patch+json"


def parse_patch(raw: bytes) -> jsonpatch.JsonPatch:
    try:
        operations = fhirjson.loads(raw)  # values keep their decimal digits
    except fhirjson.JSONDecodeError as exc:
        raise FhirError(Category.MALFORMED, f"The JSON Patch is not valid JSON: {exc}") from None
    if not isinstance(operations, list):
        raise FhirError(Category.MALFORMED, "A JSON Patch document is a JSON array of operations")
    try:
        return jsonpatch.JsonPatch(operations)
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
        raise FhirError(Category.MALFORMED, f"Invalid JSON Patch: {exc}") from None


def applier(patch: jsonpatch.JsonPatch) -> Any:
    def apply(resource: dict[str, Any]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = patch.apply(resource)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise FhirError(
                Category.PRECONDITION, f"JSON Patch test failed: {exc}", code="processing"
            ) from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise FhirError(
                Category.INVALID, f"JSON Patch cannot be applied: {exc}", code="processing"
            ) from None
        if not isinstance(result, dict):
            raise FhirError(Category.INVALID, "The patch does not leave a resource", code="processing")
        return result

    return apply


@router.patch("/{res_type}/{res_id}", name="patch")
async def patch(request: Request, res_type: str, res_id: str) -> Response:
    negotiate(request)
    known_type(res_type)
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media != JSON_PATCH:
        raise FhirError(
            Category.UNSUPPORTED_MEDIA,
            f"PATCH takes {JSON_PATCH}; got '{media or 'no Content-Type'}'",
        )
    operations = parse_patch(await request.body())
    if_match = version_from_etag(request.headers.get("if-match"))
    async with repository(request) as repo:
        version = await repo.patch(res_type, res_id, applier(operations), if_match=if_match)
    return write_response(request, version, 200, f"Patched {res_type}/{res_id} to version {version.version}")
