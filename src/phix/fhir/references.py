"""References inside resources: finding, rewriting and checking that local targets exist."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg

from phix.errors import Category, FhirError, Issue
from phix.fhir.resource_types import RESOURCE_TYPES

_LOCAL = re.compile(
    r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


def iter_references(node: Any, path: str = "") -> Iterator[tuple[dict[str, Any], str]]:
    """Yield (Reference object, element path) for every ``{"reference": "..."}`` in the resource."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield node, f"{path}.reference" if path else "reference"
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                yield from iter_references(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from iter_references(item, f"{path}[{index}]")


def local_target(reference: str, base_url: str | None = None) -> tuple[str, str] | None:
    """(type, id) when ``reference`` points into this server (relative or our absolute URL)."""
    if base_url and reference.startswith(base_url.rstrip("/") + "/"):
        reference = reference[len(base_url.rstrip("/")) + 1 :]
    match = _LOCAL.match(reference)
    if match and match.group("type") in RESOURCE_TYPES:
        return match.group("type"), match.group("id")
    return None


def rewrite_references(resource: dict[str, Any], replace: Callable[[str], str | None]) -> None:
    """Replace, in place, every reference for which ``replace`` returns a new value."""
    for ref, _ in iter_references(resource):
        new = replace(ref["reference"])
        if new is not None:
            ref["reference"] = new


def local_targets(
    resource: dict[str, Any], base_url: str | None, res_type: str
) -> dict[tuple[str, str], str]:
    """Every local target of the resource with the path of its first occurrence."""
    out: dict[tuple[str, str], str] = {}
    for ref, path in iter_references(resource):
        target = local_target(ref["reference"], base_url)
        if target is not None and target not in out:
            out[target] = f"{res_type}.{path}"
    return out


async def check_targets_exist(conn: asyncpg.Connection, targets: dict[tuple[str, str], str]) -> None:
    """409 Conflict naming every reference whose local target does not exist (or is deleted)."""
    if not targets:
        return
    keys = list(targets)
    rows = await conn.fetch(
        "SELECT r.res_type, r.res_id FROM resources r"
        " JOIN unnest($1::text[], $2::text[]) AS t(res_type, res_id)"
        " ON r.res_type = t.res_type AND r.res_id = t.res_id WHERE NOT r.deleted",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    found = {(r["res_type"], r["res_id"]) for r in rows}
    missing = [k for k in keys if k not in found]
    if missing:
        raise FhirError(
            Category.CONFLICT,
            issues=[
                Issue(f"Referenced resource {t}/{i} does not exist", (targets[(t, i)],), "not-found")
                for t, i in missing
            ],
        )
