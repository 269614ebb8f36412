"""Bundle assembly. Stored resource bytes are embedded as they are (``orjson.Fragment``)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import orjson

from phix.storage.repository import Version, format_instant, utc_now


def fragment(body: bytes) -> Any:
    return orjson.Fragment(body)


def link(relation: str, url: str) -> dict[str, str]:
    return {"relation": relation, "url": url}


def page_url(base: str, path: str, params: list[tuple[str, str]]) -> str:
    query = urlencode(params)
    return f"{base}/{path}".rstrip("/") + (f"?{query}" if query else "")


def history_entry(base: str, version: Version) -> dict[str, Any]:
    url = f"{version.res_type}/{version.res_id}"
    entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
    if version.body is not None:
        entry["resource"] = fragment(version.body)
    status = {"POST": "201 Created", "DELETE": "204 No Content"}.get(version.method, "200 OK")
    if version.method == "PUT" and version.version == 1:
        status = "201 Created"
    entry["request"] = {
        "method": version.method,
        "url": url if version.method != "POST" else version.res_type,
    }
    entry["response"] = {
        "status": status,
        "etag": version.etag,
        "lastModified": format_instant(version.last_updated),
    }
    return entry


def bundle(
    kind: str, entries: list[dict[str, Any]], links: list[dict[str, str]], total: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": format_instant(utc_now())},
        "type": kind,
    }
    if total is not None:
        out["total"] = total
    out["link"] = links
    out["entry"] = entries
    return out
