"""Reference parameters: relative (``Patient/1``), id only, absolute URLs, ``:[type]``, ``:identifier``.

Index rows: ``target_type``, ``target_id`` and ``target_url``. A relative reference is stored with
``target_url`` NULL (local); an absolute ``{base}/{Type}/{id}`` with its base in ``target_url``, so a
query for a local resource also matches references written with this server's absolute URL; other
URLs (canonicals, ``urn:``) are stored whole in ``target_url`` with NULL type/id. Versions
(``/_history/n``, ``|1.0``) are dropped. ``Reference.identifier`` goes into the token index of the
parameter's ``:identifier`` sub-index. Chaining and ``_has`` are built on these rows by the compiler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from phix.search.errors import bad_value
from phix.search.escape import unescape
from phix.search.model import Node
from phix.search.sql import Sql

TABLE = "search_reference"
COLUMNS = ("target_type", "target_id", "target_url")
MODIFIERS = frozenset({"identifier", "missing"})  # plus :[type] and chains, checked by the parser
SORT_ASC = "min({a}.target_type || '/' || {a}.target_id)"
SORT_DESC = "max({a}.target_type || '/' || {a}.target_id)"
IDENTIFIER = ":identifier"  # sub-index of Reference.identifier (token rows)

_ID = r"[A-Za-z0-9\-.]{1,64}"
_RELATIVE = re.compile(rf"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>{_ID})(?:/_history/(?P<version>{_ID}))?$")
_ABSOLUTE = re.compile(
    rf"^(?P<base>(?:https?|ftp)://.+?)/(?P<type>[A-Z][A-Za-z]+)/(?P<id>{_ID})(?:/_history/(?P<version>{_ID}))?$"
)


@dataclass(frozen=True)
class Target:
    type: str | None
    id: str | None
    url: str | None  # NULL: local; otherwise the service base (with type/id) or the whole URL


def parse_target(reference: str) -> Target | None:
    """A reference string -> where it points (None for contained ``#x`` references)."""
    if not reference or reference.startswith("#"):
        return None
    text = reference.split("|", 1)[0]  # canonical version
    match = _RELATIVE.match(text)
    if match:
        return Target(match["type"], match["id"], None)
    match = _ABSOLUTE.match(text)
    if match:
        return Target(match["type"], match["id"], match["base"])
    return Target(None, None, text)


def reference_target_type(value: dict[str, Any]) -> str | None:
    """The resource type a Reference points to (its ``reference``, else its ``type``)."""
    ref = value.get("reference")
    if isinstance(ref, str):
        target = parse_target(ref)
        if target is not None and target.type:
            return target.type
    declared = value.get("type")
    if isinstance(declared, str):
        return declared.rsplit("/", 1)[-1]
    return None


Row = tuple[str | None, str | None, str | None]


def rows_of(value: Any) -> list[Row]:
    ref = value.get("reference") if isinstance(value, dict) else value
    if not isinstance(ref, str):
        return []
    target = parse_target(ref)
    if target is None:
        return []
    return [(target.type, target.id, None if target.url is None else target.url[:600])]


def extract(nodes: list[Node]) -> list[tuple[Any, ...]]:
    rows: dict[Row, None] = {}
    for value, _type in nodes:
        for row in rows_of(value):
            rows[row] = None
    return list(rows)


def extract_identifiers(nodes: list[Node]) -> list[tuple[Any, ...]]:
    """Token rows (system, value, NULL) of ``Reference.identifier`` for ``:identifier``."""
    rows: dict[tuple[Any, ...], None] = {}
    for value, _type in nodes:
        ident = value.get("identifier") if isinstance(value, dict) else None
        if isinstance(ident, dict) and ident.get("value") is not None:
            rows[(ident.get("system"), str(ident["value"])[:500], None)] = None
    return list(rows)


@dataclass(frozen=True)
class ReferenceValue:
    type: str | None  # None: any target type
    id: str | None
    url: str | None  # set for non-local absolute references
    local: bool


def parse(
    name: str, raw: str, type_modifier: str | None, targets: tuple[str, ...], base_url: str | None
) -> ReferenceValue:
    """Parse one reference search value; ``type_modifier`` is the ``:[type]`` modifier if any."""
    text = unescape(raw).strip()
    if not text:
        raise bad_value(name, raw, "empty reference")
    if base_url and text.startswith(base_url.rstrip("/") + "/"):
        text = text[len(base_url.rstrip("/")) + 1 :]
    if "/" not in text and ":" not in text:  # a bare id
        if type_modifier:
            return ReferenceValue(type_modifier, text, None, True)
        return ReferenceValue(targets[0] if len(targets) == 1 else None, text, None, True)
    target = parse_target(text)
    if target is None:
        raise bad_value(name, raw, "contained references cannot be searched")
    if type_modifier and target.type and target.type != type_modifier:
        raise bad_value(name, raw, f"the reference is not a {type_modifier}")
    if target.url is None:
        return ReferenceValue(target.type, target.id, None, True)
    return ReferenceValue(target.type, target.id, target.url, False)


def match(sql: Sql, a: str, value: ReferenceValue, base_url: str | None) -> str:
    clauses: list[str] = []
    if value.id is not None:
        clauses.append(f"{a}.target_id = {sql.bind(value.id, 'text')}")
    if value.type is not None:
        clauses.append(f"{a}.target_type = {sql.bind(value.type, 'text')}")
    if value.local:
        if base_url:
            clauses.append(
                f"({a}.target_url IS NULL OR {a}.target_url = {sql.bind(base_url.rstrip('/'), 'text')})"
            )
        else:
            clauses.append(f"{a}.target_url IS NULL")
    else:
        clauses.append(f"{a}.target_url = {sql.bind(value.url, 'text')}")
        if value.id is None:
            clauses.append(f"{a}.target_id IS NULL")
    return "(" + " AND ".join(clauses) + ")"
