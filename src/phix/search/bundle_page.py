"""Searchset Bundle assembly: entries from stored bytes, ``search.mode``, and page links."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phix.fhir import fhirjson
from phix.fhir.bundle import bundle, fragment, link, page_url
from phix.search.include import Row

Transform = Callable[[dict[str, Any]], dict[str, Any]]


def entry(base_url: str, row: Row, mode: str, transform: Transform | None) -> dict[str, Any]:
    """One entry; the stored bytes are spliced as they are unless a transform needs the dict."""
    resource: Any = fragment(row.body) if transform is None else transform(fhirjson.loads(row.body))
    return {
        "fullUrl": f"{base_url}/{row.res_type}/{row.res_id}",
        "resource": resource,
        "search": {"mode": mode},
    }


def links(
    base_url: str,
    path: str,
    params: list[tuple[str, str]],
    *,
    cursor: str | None,
    next_cursor: str | None,
    previous_cursor: str | None,
) -> list[dict[str, str]]:
    kept = [(k, v) for k, v in params if k != "_cursor"]
    self_params = kept if cursor is None else [*kept, ("_cursor", cursor)]
    out = [link("self", page_url(base_url, path, self_params))]
    if next_cursor is not None:
        out.append(link("next", page_url(base_url, path, [*kept, ("_cursor", next_cursor)])))
    if previous_cursor is not None:
        out.append(link("previous", page_url(base_url, path, [*kept, ("_cursor", previous_cursor)])))
    return out


def searchset(
    entries: list[dict[str, Any]], page_links: list[dict[str, str]], total: int | None
) -> dict[str, Any]:
    return bundle("searchset", entries, page_links, total)
