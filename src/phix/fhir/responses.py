"""Responses to write interactions, honouring ``Prefer: return=minimal|representation|OperationOutcome``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from phix.errors import information_outcome
from phix.fhir.http import base_url, json_response, prefer, version_headers
from phix.storage.repository import Version


def write_response(request: Request, version: Version, status: int, message: str) -> Response:
    headers = version_headers(version, base_url(request))
    if status != 201:
        headers.pop("Location", None)
        headers["Content-Location"] = version_headers(version, base_url(request))["Location"]
    wanted = prefer(request, "return") or "representation"
    if wanted == "minimal":
        return Response(status_code=status, headers=headers)
    if wanted == "operationoutcome":
        return json_response(request, information_outcome(message), status, headers)
    assert version.body is not None
    return json_response(request, version.body, status, headers)
