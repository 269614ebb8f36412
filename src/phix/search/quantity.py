"""Quantity parameters: ``[prefix]number|system|code``, ``number||code``, ``number``.

Index rows: ``system``, ``code`` (Quantity.code, else its unit), ``low``/``high`` (a point for a
Quantity, the bounds of a Range) and, for UCUM units :mod:`phix.search.ucum` understands, the value
converted to a canonical unit (``canon_code``, ``canon_low``, ``canon_high``). A UCUM query whose
unit converts is matched on the canonical columns, so ``mg`` finds ``g``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from phix.search import number, ucum
from phix.search.errors import bad_value
from phix.search.escape import split_unescaped, unescape
from phix.search.model import Node
from phix.search.number import NumberValue, to_decimal
from phix.search.prefix import split_prefix
from phix.search.sql import Sql

TABLE = "search_quantity"
COLUMNS = ("system", "code", "low", "high", "canon_code", "canon_low", "canon_high")
MODIFIERS = frozenset({"missing"})
SORT_ASC = "min(coalesce({a}.canon_low, {a}.low))"
SORT_DESC = "max(coalesce({a}.canon_high, {a}.high))"
ISO4217 = "urn:iso:std:iso:4217"
# Stand-ins for the open end of a Range (NULL would never compare true).
OPEN_LOW = Decimal("-1e30")
OPEN_HIGH = Decimal("1e30")

Row = tuple[
    str | None, str | None, Decimal | None, Decimal | None, str | None, Decimal | None, Decimal | None
]


def _unit(q: dict[str, Any]) -> tuple[str | None, str | None]:
    if "currency" in q:
        return ISO4217, q.get("currency")
    code = q.get("code") if q.get("code") is not None else q.get("unit")
    return q.get("system"), code


def _row(system: str | None, code: str | None, low: Decimal | None, high: Decimal | None) -> Row:
    canon = ucum.canonical(code) if code and system == ucum.UCUM else None
    if canon is None:
        return (system, code, low, high, None, None, None)
    unit, factor = canon
    return (
        system,
        code,
        low,
        high,
        unit,
        low if low is None or low == OPEN_LOW else low * factor,
        high if high is None or high == OPEN_HIGH else high * factor,
    )


def rows_of(value: Any, type_name: str) -> list[Row]:
    if not isinstance(value, dict):
        number_value = to_decimal(value)
        return [] if number_value is None else [(None, None, number_value, number_value, None, None, None)]
    if type_name == "Range" or "low" in value or "high" in value:
        low_q, high_q = value.get("low") or {}, value.get("high") or {}
        low, high = to_decimal(low_q.get("value")), to_decimal(high_q.get("value"))
        if low is None and high is None:
            return []
        system, code = _unit(low_q if low is not None else high_q)
        return [_row(system, code, OPEN_LOW if low is None else low, OPEN_HIGH if high is None else high)]
    if type_name == "SampledData" or "origin" in value:
        return rows_of(value.get("origin"), "Quantity")
    amount = to_decimal(value.get("value"))
    if amount is None:
        return []
    system, code = _unit(value)
    return [_row(system, code, amount, amount)]


def extract(nodes: list[Node]) -> list[tuple[Any, ...]]:
    rows: dict[Row, None] = {}
    for value, type_name in nodes:
        for row in rows_of(value, type_name):
            rows[row] = None
    return list(rows)


@dataclass(frozen=True)
class QuantityValue:
    number: NumberValue
    system: str | None
    code: str | None


def parse(name: str, raw: str, modifier: str | None) -> QuantityValue:
    parts = split_unescaped(raw, "|")
    if len(parts) not in (1, 3):
        raise bad_value(name, raw, "expected number, or number|system|code")
    prefix, text = split_prefix(parts[0])
    value = NumberValue(prefix, *number.parse_number(name, raw, text))
    if len(parts) == 1:
        return QuantityValue(value, None, None)
    system, code = unescape(parts[1]) or None, unescape(parts[2]) or None
    return QuantityValue(value, system, code)


def _scaled(value: NumberValue, factor: Decimal) -> NumberValue:
    return NumberValue(value.prefix, value.value * factor, value.low * factor, value.high * factor)


def match(sql: Sql, a: str, value: QuantityValue, modifier: str | None) -> str:
    canon = ucum.canonical(value.code) if value.code and value.system == ucum.UCUM else None
    if canon is not None:
        unit, factor = canon
        condition = number.range_condition(
            sql, f"{a}.canon_low", f"{a}.canon_high", _scaled(value.number, factor)
        )
        return f"({a}.canon_code = {sql.bind(unit, 'text')} AND {condition})"
    clauses: list[str] = []
    if value.code is not None:
        clauses.append(f"{a}.code = {sql.bind(value.code, 'text')}")
    if value.system is not None:
        clauses.append(f"{a}.system = {sql.bind(value.system, 'text')}")
    clauses.append(number.range_condition(sql, f"{a}.low", f"{a}.high", value.number))
    return "(" + " AND ".join(clauses) + ")"
