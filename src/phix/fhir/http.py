"""HTTP details of the FHIR RESTful API: media types, headers, bodies and responses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from phix.errors import Category, FhirError
from phix.fhir import fhirjson
from phix.fhir.validation import resource_types
from phix.storage.repository import Version, http_date

FHIR_JSON = "application/fhir+json"
_JSON_TYPES = {FHIR_JSON, "application/json", "json", "text/json"}
_XML_TYPES = {"application/fhir+xml", "application/xml", "text/xml", "xml"}
_ANY = {"*/*", "application/*"}
_WEAK_ETAG = re.compile(r'^\s*(?:W/)?"?([0-9]+)"?\s*$')


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def negotiate(request: Request) -> None:
    """Answer JSON or refuse with 406: ``_format`` wins over ``Accept``."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        if _media_type(fmt) in _JSON_TYPES:
            return
        raise FhirError(
            Category.NOT_ACCEPTABLE,
            f"_format '{fmt}' is not supported; this server speaks application/fhir+json only",
        )
    accept = request.headers.get("accept")
    if not accept:
        return
    offered = [_media_type(part) for part in accept.split(",")]
    if any(m in _JSON_TYPES or m in _ANY for m in offered):
        return
    raise FhirError(
        Category.NOT_ACCEPTABLE,
        f"Accept '{accept}' cannot be satisfied; this server speaks application/fhir+json only",
    )


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON (decimals keep their digits, see :mod:`phix.fhir.fhirjson`),
    after checking its media type (415) and syntax (400)."""
    content_type = request.headers.get("content-type")
    media = _media_type(content_type) if content_type else FHIR_JSON
    if media in _XML_TYPES:
        raise FhirError(Category.UNSUPPORTED_MEDIA, "XML is not supported; send application/fhir+json")
    if media not in _JSON_TYPES:
        raise FhirError(
            Category.UNSUPPORTED_MEDIA,
            f"Content-Type '{content_type}' is not supported; send application/fhir+json",
        )
    raw = await request.body()
    if not raw.strip():
        raise FhirError(Category.MALFORMED, "The request body is empty")
    try:
        return fhirjson.loads(raw)
    except fhirjson.JSONDecodeError as exc:
        raise FhirError(Category.MALFORMED, f"The body is not valid JSON: {exc}") from None


def resource_body(data: Any, expected_type: str, expected_id: str | None = None) -> dict[str, Any]:
    """Check the shape of a resource body against the URL (400 on mismatch)."""
    if not isinstance(data, dict):
        raise FhirError(Category.MALFORMED, "The body must be a JSON object (a FHIR resource)")
    res_type = data.get("resourceType")
    if not isinstance(res_type, str):
        raise FhirError(Category.MALFORMED, "The resource has no resourceType", expression=["resourceType"])
    if res_type not in resource_types():
        raise FhirError(Category.MALFORMED, f"Unknown resourceType '{res_type}'", expression=["resourceType"])
    if res_type != expected_type:
        raise FhirError(
            Category.INCORRECT,
            f"resourceType '{res_type}' does not match the URL's type '{expected_type}'",
            expression=["resourceType"],
        )
    if expected_id is not None:
        body_id = data.get("id")
        if body_id is None:
            raise FhirError(
                Category.INCORRECT, "An update must carry the id of the URL", expression=[f"{res_type}.id"]
            )
        if body_id != expected_id:
            raise FhirError(
                Category.INCORRECT,
                f"The body's id '{body_id}' does not match the URL's id '{expected_id}'",
                expression=[f"{res_type}.id"],
            )
    return data


def known_type(res_type: str) -> str:
    if res_type not in resource_types():
        raise FhirError(Category.NOT_FOUND, f"Unknown resource type '{res_type}'", code="not-supported")
    return res_type


_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def valid_id(res_id: str) -> str:
    if not _ID.match(res_id):
        raise FhirError(Category.INCORRECT, f"'{res_id}' is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})")
    return res_id


def version_from_etag(value: str | None, header: str = "If-Match") -> int | None:
    if value is None:
        return None
    match = _WEAK_ETAG.match(value)
    if not match:
        raise FhirError(Category.INCORRECT, f"{header} '{value}' is not a version ETag like W/\"3\"")
    return int(match.group(1))


def if_modified_since(request: Request) -> datetime | None:
    value = request.headers.get("if-modified-since")
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # RFC 9110: an invalid date is ignored
    # "-0000" or no zone at all parse as naive datetimes; an HTTP-date is always GMT
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def prefer(request: Request, key: str) -> str | None:
    """A token from the Prefer header, e.g. ``prefer(req, "return")`` -> "minimal"."""
    header = request.headers.get("prefer")
    if not header:
        return None
    for part in header.split(","):
        for item in part.split(";"):
            name, _, value = item.strip().partition("=")
            if name.strip().lower() == key:
                return value.strip().strip('"').lower()
    return None


def pretty(request: Request) -> bool:
    return request.query_params.get("_pretty", "").lower() == "true"


def json_response(
    request: Request,
    content: bytes | dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A FHIR JSON response. Stored bytes are sent as they are unless ``_pretty=true`` is asked."""
    if isinstance(content, bytes):
        body = fhirjson.reformat(content) if pretty(request) else content
    else:
        body = fhirjson.dumps(content, pretty=pretty(request))
    return Response(body, status_code=status, headers=headers, media_type=f"{FHIR_JSON}; charset=utf-8")


def version_headers(version: Version, base_url: str | None = None) -> dict[str, str]:
    headers = {"ETag": version.etag, "Last-Modified": http_date(version.last_updated)}
    if base_url is not None:
        headers["Location"] = f"{base_url}/{version.res_type}/{version.res_id}/_history/{version.version}"
    return headers


def base_url(request: Request) -> str:
    configured = getattr(request.app.state, "public_base_url", None)
    if configured:
        return str(configured).rstrip("/")
    prefix = request.app.state.settings.fhir.base_path
    return f"{request.url.scheme}://{request.url.netloc}{prefix}"
