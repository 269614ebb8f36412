"""URI parameters: exact match, ``:below`` (starts with) and ``:above`` (is a prefix of the value).

Index rows: ``uri`` (canonical versions after ``|`` are kept; the spec matches uris exactly).
``:above`` is answered with the list of the value's path prefixes (``= ANY``), so it uses the index.
"""

from __future__ import annotations

from typing import Any

from phix.search.errors import bad_value
from phix.search.escape import unescape
from phix.search.model import Node
from phix.search.sql import Sql, like_prefix

TABLE = "search_uri"
COLUMNS = ("uri",)
MODIFIERS = frozenset({"below", "above", "missing"})
SORT_ASC = "min({a}.uri)"
SORT_DESC = "max({a}.uri)"
MAX_LENGTH = 600  # btree entries are limited to ~2.7 kB


def extract(nodes: list[Node]) -> list[tuple[Any, ...]]:
    rows: dict[tuple[str], None] = {}
    for value, _type in nodes:
        if isinstance(value, str) and value:
            rows[(value[:MAX_LENGTH],)] = None
        elif isinstance(value, dict) and isinstance(value.get("reference"), str):
            rows[(value["reference"][:MAX_LENGTH],)] = None
    return list(rows)


def parse(name: str, raw: str, modifier: str | None) -> str:
    text = unescape(raw)
    if not text:
        raise bad_value(name, raw, "empty uri")
    return text


def prefixes(uri: str) -> list[str]:
    """``http://a/b/c`` -> [``http://a/b/c``, ``http://a/b``, ``http://a``] (path boundaries)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        parts = uri.split(":")
        return [":".join(parts[:i]) for i in range(len(parts), 0, -1)]
    segments = rest.rstrip("/").split("/")
    return [scheme + "://" + "/".join(segments[:i]) for i in range(len(segments), 0, -1)]


def match(sql: Sql, a: str, value: str, modifier: str | None) -> str:
    if modifier == "below":
        return f"{a}.uri LIKE {sql.bind(like_prefix(value), 'text')}"
    if modifier == "above":
        return f"{a}.uri = ANY({sql.bind(prefixes(value), 'text[]')})"
    return f"{a}.uri = {sql.bind(value, 'text')}"
