"""Token parameters: ``code``, ``system|code``, ``|code``, ``system|``; ``:text``, ``:not``, ``:of-type``.

Index rows: ``system``, ``code`` and ``text`` (normalised Coding.display / CodeableConcept.text /
Identifier.type.text, for ``:text``). Codings, CodeableConcepts, Identifiers (system|value),
ContactPoints (system|value), codes, strings, uris, ids and booleans are indexed. Identifiers with
a type also get rows in the parameter's ``:of-type`` index (system/code of the type, text = value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from phix.search.errors import bad_value
from phix.search.escape import split_unescaped, unescape
from phix.search.model import Node
from phix.search.sql import Sql, like_prefix
from phix.search.string import normalize

TABLE = "search_token"
COLUMNS = ("system", "code", "text")
MODIFIERS = frozenset({"text", "not", "of-type", "missing"})
SORT_ASC = "min({a}.code)"
SORT_DESC = "max({a}.code)"
OF_TYPE = ":of-type"  # sub-index of identifier types

Row = tuple[str | None, str | None, str | None]
# btree entries are limited to ~2.7 kB: longer values are cut (an exact match then fails on them).
MAX_LENGTH = 500


def _cap(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_LENGTH]


def _text(value: Any) -> str | None:
    return normalize(value)[:200] if isinstance(value, str) and value else None


def _coding(coding: Any, out: list[Row]) -> None:
    if isinstance(coding, dict) and (coding.get("code") is not None or coding.get("system")):
        code = coding.get("code")
        out.append((_cap(coding.get("system")), _cap(code), _text(coding.get("display"))))


def rows_of(value: Any, type_name: str) -> list[Row]:
    out: list[Row] = []
    if isinstance(value, bool):
        out.append((None, "true" if value else "false", None))
    elif isinstance(value, str | int | float):
        out.append((None, _cap(value), None))
    elif isinstance(value, dict):
        if type_name == "CodeableConcept" or "coding" in value:
            for coding in value.get("coding", []):
                _coding(coding, out)
            if value.get("text"):
                out.append((None, None, _text(value["text"])))
        elif type_name in ("Identifier", "ContactPoint") or "value" in value:
            type_text = _text((value.get("type") or {}).get("text")) if type_name == "Identifier" else None
            if value.get("value") is not None or value.get("system"):
                out.append((_cap(value.get("system")), _cap(value.get("value")), type_text))
        else:
            _coding(value, out)
    return out


def extract(nodes: list[Node]) -> list[tuple[Any, ...]]:
    rows: dict[Row, None] = {}
    for value, type_name in nodes:
        for row in rows_of(value, type_name):
            rows[row] = None
    return list(rows)


def extract_of_type(nodes: list[Node]) -> list[tuple[Any, ...]]:
    """Rows for ``identifier:of-type``: (type system, type code, identifier value)."""
    rows: dict[Row, None] = {}
    for value, type_name in nodes:
        if type_name != "Identifier" or not isinstance(value, dict) or not value.get("value"):
            continue
        for coding in (value.get("type") or {}).get("coding", []):
            if isinstance(coding, dict) and coding.get("code"):
                rows[(_cap(coding.get("system")), _cap(coding["code"]), _cap(value["value"]))] = None
    return list(rows)


@dataclass(frozen=True)
class TokenValue:
    system: str | None  # None: any system
    code: str | None  # None: any code (``system|``)
    no_system: bool = False  # ``|code``
    text: str | None = None  # for :text, or the identifier value for :of-type


def parse(name: str, raw: str, modifier: str | None) -> TokenValue:
    if modifier == "text":
        text = normalize(unescape(raw))
        if not text:
            raise bad_value(name, raw, "empty text")
        return TokenValue(None, None, text=text)
    parts = split_unescaped(raw, "|")
    if modifier == "of-type":
        if len(parts) != 3 or not all(parts):
            raise bad_value(name, raw, "expected type-system|type-code|value")
        return TokenValue(unescape(parts[0]), unescape(parts[1]), text=unescape(parts[2]))
    if len(parts) == 1:
        if not parts[0]:
            raise bad_value(name, raw, "empty token")
        return TokenValue(None, unescape(parts[0]))
    if len(parts) == 2:
        system, code = unescape(parts[0]), unescape(parts[1])
        if not system and not code:
            raise bad_value(name, raw, "empty system and code")
        if not system:
            return TokenValue(None, code, no_system=True)
        return TokenValue(system, code or None)
    raise bad_value(name, raw, "more than one unescaped '|'")


def match(sql: Sql, a: str, value: TokenValue, modifier: str | None) -> str:
    if modifier == "text":
        return f"{a}.text LIKE {sql.bind(like_prefix(value.text or ''), 'text')}"
    clauses: list[str] = []
    if value.code is not None:
        clauses.append(f"{a}.code = {sql.bind(value.code, 'text')}")
    if value.no_system:
        clauses.append(f"{a}.system IS NULL")
    elif value.system is not None:
        clauses.append(f"{a}.system = {sql.bind(value.system, 'text')}")
    if modifier == "of-type":
        clauses.append(f"{a}.text = {sql.bind(value.text, 'text')}")
    return "(" + " AND ".join(clauses) + ")" if len(clauses) > 1 else clauses[0]
