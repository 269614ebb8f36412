"""``GET [base]/metadata``: a CapabilityStatement generated from the routes really mounted.

Every FHIR route carries its interaction code as its route name (``read``, ``history-type`` ...);
the statement lists exactly those, for every resource type of R4B, plus the search parameters
of the registry when search is mounted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from phix import __version__
from phix.fhir.http import base_url, json_response, negotiate
from phix.fhir.validation import resource_types

router = APIRouter()

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
SYSTEM_INTERACTIONS = {
    "transaction": "batch-transaction",
    "batch": "batch-transaction",
    "search-system": "search-system",
    "history-system": "history-system",
}


def _flat_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """(full path, route) of every route. Recent FastAPI keeps an included router as one nested
    ``_IncludedRouter`` entry (its routes under ``original_router``, its prefix in
    ``include_context``) instead of copying its routes into ``app.routes``."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            context = getattr(route, "include_context", None)
            yield from _flat_routes(nested.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, Route):
            yield prefix + route.path, route


def mounted_interactions(routes: list[BaseRoute], prefix: str) -> set[str]:
    names = set()
    for path, route in _flat_routes(routes):
        if isinstance(route, Route) and path.startswith(prefix) and route.name:
            names.add(route.name)
    return names


def capability_statement(request: Request) -> dict[str, Any]:
    prefix = request.app.state.settings.fhir.base_path
    mounted = mounted_interactions(request.app.routes, prefix)
    registry = getattr(request.app.state, "registry", None)
    # conditional create is the If-None-Exist header on create, answered by the search finder
    searchable = getattr(request.app.state, "finder", None) is not None  # conditionals need search
    conditional_create = "create" in mounted and searchable
    conditional_delete = "multiple" if searchable and "conditional-delete" in mounted else "not-supported"
    resources = []
    for res_type in sorted(resource_types()):
        entry: dict[str, Any] = {
            "type": res_type,
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS if code in mounted],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": conditional_create,
            "conditionalUpdate": searchable and "conditional-update" in mounted,
            "conditionalDelete": conditional_delete,
        }
        if "read" in mounted:
            entry["conditionalRead"] = "full-support"
        if registry is not None:
            entry["searchParam"] = [
                {"name": p.code, "definition": p.url, "type": p.type}
                for p in registry.params_for(res_type).values()
            ]
        resources.append(entry)
    operations = [
        {"name": name, "definition": definition}
        for name, definition in getattr(request.app.state, "operations", {}).items()
    ]
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": resources,
        "interaction": [{"code": code} for code, route in SYSTEM_INTERACTIONS.items() if route in mounted],
    }
    if operations:
        rest["operation"] = operations
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-29",
        "publisher": "Putian Health Information Exchange",
        "kind": "instance",
        "software": {"name": "phix", "version": __version__},
        "implementation": {
            "description": "Putian regional health information exchange",
            "url": base_url(request),
        },
        "fhirVersion": "4.3.0",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    }


@router.get("/metadata", name="capabilities")
async def metadata(request: Request) -> Response:
    negotiate(request)
    return json_response(request, capability_statement(request))
