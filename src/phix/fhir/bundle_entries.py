"""Parsing of batch/transaction Bundle entries into typed requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from phix.errors import Category, FhirError
from phix.fhir.http import version_from_etag
from phix.fhir.validation import resource_types

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Transaction processing order (FHIR R4 3.1.0.11.2): DELETE, POST, PUT/PATCH, GET/HEAD.
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class Entry:
    index: int
    method: str
    url: str
    res_type: str | None
    res_id: str | None
    version: str | None  # .../_history/<vid>
    query: str
    resource: Any | None
    full_url: str | None
    if_none_exist: str | None
    if_match: int | None
    if_none_match: str | None
    if_modified_since: str | None

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def conditional(self) -> bool:
        return self.res_id is None and bool(self.query)


def _fail(index: int, message: str, element: str = "request") -> FhirError:
    return FhirError(
        Category.INCORRECT,
        f"Bundle.entry[{index}]: {message}",
        expression=[f"Bundle.entry[{index}].{element}"],
    )


def parse_bundle(data: Any) -> tuple[str, list[Entry]]:
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise FhirError(Category.INCORRECT, "POST to the base takes a Bundle of type batch or transaction")
    kind = data.get("type")
    if kind not in {"batch", "transaction"}:
        raise FhirError(
            Category.INCORRECT,
            f"Bundle.type must be batch or transaction, not '{kind}'",
            expression=["Bundle.type"],
        )
    raw_entries = data.get("entry") or []
    if not isinstance(raw_entries, list):
        raise FhirError(Category.INCORRECT, "Bundle.entry must be an array", expression=["Bundle.entry"])
    return kind, [parse_entry(i, raw) for i, raw in enumerate(raw_entries)]


def parse_entry(index: int, raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise _fail(index, "an entry must be an object", "")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise _fail(index, "entry.request is required in a batch or transaction")
    method = str(request.get("method", "")).upper()
    if method not in METHODS:
        raise _fail(index, f"unsupported request.method '{request.get('method')}'", "request.method")
    url = request.get("url")
    if not isinstance(url, str) or not url:
        raise _fail(index, "request.url is required", "request.url")
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if parts.scheme:  # absolute URL: keep the part after the base (…/fhir/Patient/1 -> Patient/1)
        segments = path.split("/")
        for start in range(len(segments)):
            if segments[start] in resource_types():
                path = "/".join(segments[start:])
                break
    segments = [s for s in path.split("/") if s]
    res_type = segments[0] if segments else None
    if res_type is not None and res_type not in resource_types() and not res_type.startswith("$"):
        raise _fail(index, f"unknown resource type '{res_type}' in request.url", "request.url")
    res_id = segments[1] if len(segments) > 1 else None
    version = segments[3] if len(segments) > 3 and segments[2] == "_history" else None
    resource = raw.get("resource")
    if method in {"POST", "PUT"}:
        if not isinstance(resource, dict):
            raise _fail(index, f"{method} needs entry.resource", "resource")
        if resource.get("resourceType") != res_type:
            raise _fail(
                index, f"resourceType '{resource.get('resourceType')}' does not match url '{url}'", "resource"
            )
    if method == "PATCH" and resource is None:
        raise _fail(
            index, "PATCH needs entry.resource (a Binary with a JSON Patch, or Parameters)", "resource"
        )
    full_url = raw.get("fullUrl")
    try:
        if_match = version_from_etag(request.get("ifMatch"), "ifMatch")
    except FhirError as exc:
        raise _fail(index, exc.issues[0].diagnostics, "request.ifMatch") from None
    return Entry(
        index=index,
        method=method,
        url=url,
        res_type=res_type,
        res_id=res_id,
        version=version,
        query=parts.query,
        resource=resource,
        full_url=full_url if isinstance(full_url, str) else None,
        if_none_exist=request.get("ifNoneExist"),
        if_match=if_match,
        if_none_match=request.get("ifNoneMatch"),
        if_modified_since=request.get("ifModifiedSince"),
    )
