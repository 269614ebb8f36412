"""``_sort`` keys and keyset paging.

Every result order ends with ``rid`` (unique, never reused), so each row has a distinct sort
position. A page link carries an opaque ``_cursor``: the sort-key values of the last (``next``) or
first (``previous``) row of the page. The next page is "rows strictly after that position" in the
same order, so concurrent inserts, updates and deletes never make a page skip or repeat a row
that stays in the result (unlike OFFSET). Resources without a value for a sort key come last.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from phix.errors import Category, FhirError
from phix.search.compiler import Compiler
from phix.search.errors import bad_value
from phix.search.extract import TYPE_MODULES
from phix.search.parse import SortKey
from phix.search.sql import Sql

_SQL_TYPES = {
    "string": "text",
    "token": "text",
    "reference": "text",
    "uri": "text",
    "date": "timestamptz",
    "number": "numeric",
    "quantity": "numeric",
}


@dataclass(frozen=True)
class OrderKey:
    expr: str
    sql_type: str
    descending: bool = False
    rid_only: bool = True  # reads nothing of the resources row but rid


def order_keys(compiler: Compiler, types: tuple[str, ...], r: str, sort: list[SortKey]) -> list[OrderKey]:
    keys: list[OrderKey] = []
    for item in sort:
        params = compiler.params(types, item.code)
        first = params[0]
        if first.column == "res_id":
            keys.append(OrderKey(f"{r}.res_id", "text", item.descending, rid_only=False))
            continue
        if first.column == "last_updated":
            keys.append(OrderKey(f"{r}.last_updated", "timestamptz", item.descending, rid_only=False))
            continue
        if first.type not in _SQL_TYPES:
            raise bad_value("_sort", item.code, f"cannot sort on a {first.type} parameter")
        module = TYPE_MODULES[first.type]
        a = compiler.sql.alias("o")
        aggregate = (module.SORT_DESC if item.descending else module.SORT_ASC).format(a=a)
        ph = compiler.ph(compiler.sql, a, [p.hash for p in params])
        expr = f"(SELECT {aggregate} FROM {module.TABLE} {a} WHERE {a}.rid = {r}.rid AND {ph})"
        keys.append(OrderKey(expr, _SQL_TYPES[first.type], item.descending))
    keys.append(OrderKey(f"{r}.rid", "bigint"))
    return keys


def order_by(keys: list[OrderKey], backward: bool, qualifier: str = "") -> str:
    parts = []
    for i, key in enumerate(keys):
        descending = key.descending != backward
        nulls = "FIRST" if backward else "LAST"
        parts.append(f"{qualifier}k{i} {'DESC' if descending else 'ASC'} NULLS {nulls}")
    return ", ".join(parts)


def keyset(sql: Sql, keys: list[OrderKey], values: list[Any], backward: bool) -> str:
    """Rows strictly after (``backward``: before) the position ``values`` in the order of ``keys``."""
    alternatives: list[str] = []
    ties: list[str] = []
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        column = f"k{i}"
        if value is None:
            strict = f"{column} IS NOT NULL" if backward else None
            tie = f"{column} IS NULL"
        else:
            bound = sql.bind(value, key.sql_type)
            greater = key.descending == backward  # the direction "after" moves in
            op = ">" if greater else "<"
            strict = f"{column} {op} {bound}" if backward else f"({column} {op} {bound} OR {column} IS NULL)"
            tie = f"{column} = {bound}"
        if strict is not None:
            alternatives.append("(" + " AND ".join([*ties, strict]) + ")")
        ties.append(tie)
    return "(" + " OR ".join(alternatives) + ")" if alternatives else "false"


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


def _decode_value(value: Any, sql_type: str) -> Any:
    if value is None:
        return None
    if sql_type == "timestamptz" and isinstance(value, dict) and isinstance(value.get("t"), str):
        return datetime.fromisoformat(value["t"])
    if sql_type == "numeric" and isinstance(value, dict) and isinstance(value.get("n"), str):
        return Decimal(value["n"])
    if sql_type == "text" and isinstance(value, str):
        return value
    if sql_type == "bigint" and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(sql_type)


def encode_cursor(values: list[Any], backward: bool) -> str:
    raw = orjson.dumps({"d": "p" if backward else "n", "k": [_encode_value(v) for v in values]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, keys: list[OrderKey]) -> tuple[list[Any], bool]:
    """(key values, backward) from a ``_cursor``; 400 if it does not fit this query's order."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        values = data["k"]
        if data["d"] not in ("n", "p") or not isinstance(values, list) or len(values) != len(keys):
            raise ValueError("shape")
        decoded = [_decode_value(v, k.sql_type) for v, k in zip(values, keys, strict=True)]
        return decoded, data["d"] == "p"
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise FhirError(
            Category.INCORRECT,
            "Invalid or outdated paging cursor (_cursor); repeat the search",
            code="invalid",
        ) from None
