"""String parameters: case- and accent-insensitive starts-with by default, ``:exact``, ``:contains``.

Index rows: ``norm`` (the normalised text: NFKD, combining marks dropped, case-folded, whitespace
collapsed) and ``exact`` (the original text). HumanName and Address are indexed part by part (and
their ``text``), as the spec asks. A SearchParameter may name a *normaliser* (phix extension, see
README) which replaces the default one for both the index and the query, e.g. ``pinyin``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from phix.search.errors import bad_value
from phix.search.escape import unescape
from phix.search.model import Node
from phix.search.sql import Sql, escape_like, like_prefix

TABLE = "search_string"
COLUMNS = ("norm", "exact")
MODIFIERS = frozenset({"exact", "contains", "missing"})
SORT_ASC = "min({a}.norm)"
SORT_DESC = "max({a}.norm)"

_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
MAX_LENGTH = 200  # index prefix length; longer values are cut (starts-with still works)


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


@dataclass(frozen=True)
class Normalizer:
    """How one parameter turns stored text into index keys and query text into a search key."""

    index: Callable[[str], list[str]]
    query: Callable[[str], str]
    # Composite values (HumanName) may be indexed as a whole as well as part by part.
    whole_name: bool = False


DEFAULT = Normalizer(index=lambda s: [normalize(s)], query=normalize)


def strings_of(value: Any, type_name: str) -> list[str]:
    """The texts a node contributes to a string parameter."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    parts = _NAME_PARTS if type_name == "HumanName" else _ADDRESS_PARTS if type_name == "Address" else ()
    if not parts:
        if "family" in value or "given" in value:
            parts = _NAME_PARTS
        elif "city" in value or "line" in value:
            parts = _ADDRESS_PARTS
        else:
            return [v for k, v in value.items() if k in ("text", "display", "value") and isinstance(v, str)]
    out: list[str] = []
    for part in parts:
        item = value.get(part)
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, list):
            out.extend(v for v in item if isinstance(v, str))
    return out


def whole_names(value: Any) -> list[str]:
    """``given... family`` and ``family given...`` forms of a HumanName (for name-like normalisers)."""
    if not isinstance(value, dict):
        return []
    family = value.get("family") if isinstance(value.get("family"), str) else ""
    given = " ".join(g for g in value.get("given", []) if isinstance(g, str))
    if not family or not given:
        return []
    return [f"{family} {given}", f"{given} {family}"]


def extract(nodes: list[Node], normalizer: Normalizer = DEFAULT) -> list[tuple[Any, ...]]:
    rows: dict[tuple[str, str], None] = {}
    norms: set[str] = set()
    for value, type_name in nodes:
        for text in strings_of(value, type_name):
            for key in normalizer.index(text):
                if key:
                    rows[(key[:MAX_LENGTH], text)] = None
                    norms.add(key[:MAX_LENGTH])
        if normalizer.whole_name and type_name == "HumanName":
            for text in whole_names(value):  # only keys the parts did not give already
                for key in normalizer.index(text):
                    if key and key[:MAX_LENGTH] not in norms:
                        rows[(key[:MAX_LENGTH], text)] = None
                        norms.add(key[:MAX_LENGTH])
    return list(rows)


@dataclass(frozen=True)
class StringValue:
    text: str  # unescaped, as given
    key: str  # normalised


def parse(name: str, raw: str, modifier: str | None, normalizer: Normalizer = DEFAULT) -> StringValue:
    text = unescape(raw)
    if not text and modifier != "exact":
        raise bad_value(name, raw, "empty string")
    return StringValue(text, normalizer.query(text)[:MAX_LENGTH])


def match(sql: Sql, a: str, value: StringValue, modifier: str | None) -> str:
    if modifier == "exact":  # the norm prefix lets the index narrow the candidates first
        prefix = sql.bind(like_prefix(value.key), "text")
        return f"({a}.norm LIKE {prefix} AND {a}.exact = {sql.bind(value.text, 'text')})"
    if modifier == "contains":
        return f"{a}.norm LIKE {sql.bind('%' + escape_like(value.key) + '%', 'text')}"
    return f"{a}.norm LIKE {sql.bind(like_prefix(value.key), 'text')}"
