"""Parse a search request's parameters: control parameters, names with modifiers, chains and _has.

The result is a :class:`Query` with the result parameters (``_count``, ``_sort``, ``_include`` ...)
and the search criteria as :class:`Criterion` items (one per parameter occurrence: AND between
items, OR between the comma-separated values inside one). Values are parsed later per parameter
type by the compiler, which knows the resource types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from phix.search.errors import bad_param, bad_value
from phix.search.escape import split_unescaped

# Accepted and ignored everywhere (handled by the HTTP layer).
IGNORED = frozenset({"_format", "_pretty"})
SUMMARY_VALUES = frozenset({"true", "false", "text", "data", "count"})
TOTAL_VALUES = frozenset({"none", "estimate", "accurate"})
# Result / control parameters this engine does not implement.
UNSUPPORTED = frozenset({"_contained", "_containedType", "_list", "_text", "_content", "_query", "_filter"})


@dataclass(frozen=True)
class Link:
    """One segment of a parameter name: ``code[:modifier]``."""

    code: str
    modifier: str | None = None

    def __str__(self) -> str:
        return self.code if self.modifier is None else f"{self.code}:{self.modifier}"


@dataclass(frozen=True)
class Has:
    """``_has:Type:param:rest`` - resources of ``type`` whose ``param`` points here, matching rest."""

    type: str
    param: str
    inner: Name


@dataclass(frozen=True)
class Name:
    """A parsed parameter name: a chain of links (length 1 if not chained), or a _has."""

    chain: tuple[Link, ...] = ()
    has: Has | None = None

    def __str__(self) -> str:
        if self.has is not None:
            return f"_has:{self.has.type}:{self.has.param}:{self.has.inner}"
        return ".".join(str(link) for link in self.chain)


@dataclass(frozen=True)
class Criterion:
    name: Name
    raw_name: str
    value: str  # raw, escaped
    values: tuple[str, ...]  # split on unescaped commas (still escaped)


@dataclass(frozen=True)
class SortKey:
    code: str
    descending: bool


@dataclass(frozen=True)
class IncludeSpec:
    source: str  # source resource type, or "*"
    param: str  # reference parameter code, or "*"
    target: str | None
    iterate: bool
    reverse: bool

    def __str__(self) -> str:
        return ":".join(p for p in (self.source, self.param, self.target) if p)


@dataclass
class Query:
    criteria: list[Criterion] = field(default_factory=list)
    count: int | None = None
    sort: list[SortKey] = field(default_factory=list)
    total: str | None = None
    summary: str | None = None
    elements: list[str] | None = None
    includes: list[IncludeSpec] = field(default_factory=list)
    types: list[str] | None = None  # _type (system search)
    cursor: str | None = None
    ignored: list[str] = field(default_factory=list)  # unknown parameters skipped (lenient)


def parse_name(raw: str) -> Name:
    if raw.startswith("_has:"):
        parts = raw.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise bad_param(raw, "expected _has:Type:reference-parameter:parameter")
        return Name(has=Has(parts[1], parts[2], parse_name(parts[3])))
    links: list[Link] = []
    for segment in raw.split("."):
        code, _, modifier = segment.partition(":")
        if not code:
            raise bad_param(raw, "empty parameter name")
        links.append(Link(code, modifier or None))
    return Name(chain=tuple(links))


def _count(raw: str) -> int:
    if not raw.isdigit():
        raise bad_value("_count", raw, "must be a non-negative integer")
    return int(raw)


def _sort(raw: str) -> list[SortKey]:
    keys = []
    for item in raw.split(","):
        item = item.strip()
        descending = item.startswith("-")
        code = item[1:] if descending else item
        if not code:
            raise bad_value("_sort", raw, "empty sort key")
        keys.append(SortKey(code, descending))
    return keys


def _include(name: str, raw: str) -> IncludeSpec:
    base, _, modifier = name.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise bad_param(name, f"unknown modifier {modifier!r}")
    reverse = base == "_revinclude"
    if raw == "*":
        return IncludeSpec("*", "*", None, modifier != "", reverse)
    parts = raw.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise bad_value(name, raw, "expected SourceType:parameter[:TargetType] or *")
    return IncludeSpec(parts[0], parts[1], parts[2] if len(parts) == 3 else None, modifier != "", reverse)


def parse_query(params: list[tuple[str, str]]) -> Query:
    query = Query()
    for name, value in params:
        if name in IGNORED:
            continue
        if name == "_count":
            query.count = _count(value)
        elif name == "_sort":
            query.sort.extend(_sort(value))
        elif name == "_total":
            if value not in TOTAL_VALUES:
                raise bad_value(name, value, "expected none, estimate or accurate")
            query.total = value
        elif name == "_summary":
            if value not in SUMMARY_VALUES:
                raise bad_value(name, value, "expected true, false, text, data or count")
            query.summary = value
        elif name == "_elements":
            query.elements = [e.strip() for e in value.split(",") if e.strip()]
        elif name.split(":", 1)[0] in ("_include", "_revinclude"):
            query.includes.append(_include(name, value))
        elif name == "_type":
            query.types = [t.strip() for t in value.split(",") if t.strip()]
        elif name == "_cursor":
            query.cursor = value
        else:
            query.criteria.append(
                Criterion(parse_name(name), name, value, tuple(split_unescaped(value, ",")))
            )
    return query
