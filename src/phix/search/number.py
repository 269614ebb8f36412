"""Number parameters: stored as closed ``[low, high]`` decimals; searched with implicit precision.

A search value ``100`` means ``[99.5, 100.5)`` for ``eq``/``ne`` (FHIR R4 3.1.1.4.1: the precision
of the given digits); ``1e2`` means ``[50, 150)``. Other prefixes compare with the exact value;
``ap`` is +-10%. Integers, decimals, Ranges (low/high) and SampledData (origin) are indexed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from phix.search.errors import bad_value
from phix.search.model import Node
from phix.search.prefix import split_prefix
from phix.search.sql import Sql

TABLE = "search_number"
COLUMNS = ("low", "high")
MODIFIERS = frozenset({"missing"})
SORT_ASC = "min({a}.low)"
SORT_DESC = "max({a}.high)"


def to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def bounds_of(value: Any) -> tuple[Decimal, Decimal] | None:
    """A number, or a Range's ``low.value``/``high.value`` (an open end stays open as None)."""
    number = to_decimal(value)
    if number is not None:
        return number, number
    return None


def extract(nodes: list[Node]) -> list[tuple[Any, ...]]:
    rows: dict[tuple[Decimal | None, Decimal | None], None] = {}
    for value, _type in nodes:
        found = bounds_of(value)
        if found:
            rows[found] = None
    return list(rows)


@dataclass(frozen=True)
class NumberValue:
    prefix: str
    value: Decimal
    low: Decimal  # implicit precision range [low, high)
    high: Decimal


def exact(*operands: Decimal) -> Context:
    """A context precise enough that adding or subtracting ``operands`` is exact (the default
    context rounds to 28 digits; FHIR decimals may carry more)."""
    digits = max(len(op.as_tuple().digits) for op in operands)
    exponents = [int(e) for op in operands if isinstance(e := op.as_tuple().exponent, int)]
    span = (max(exponents) - min(exponents)) if exponents else 0
    return Context(prec=max(28, digits + span + 2))


def parse_number(name: str, raw: str, text: str) -> tuple[Decimal, Decimal, Decimal]:
    number = to_decimal(text) if text and text.strip() == text else None
    if number is None:
        raise bad_value(name, raw, "not a number")
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    ctx = exact(number, half)
    return number, ctx.subtract(number, half), ctx.add(number, half)


def parse(name: str, raw: str, modifier: str | None) -> NumberValue:
    prefix, text = split_prefix(raw)
    return NumberValue(prefix, *parse_number(name, raw, text))


def range_condition(sql: Sql, low: str, high: str, value: NumberValue) -> str:
    if value.prefix in ("eq", "ne"):
        s_low, s_high = sql.bind(value.low, "numeric"), sql.bind(value.high, "numeric")
        eq = f"({low} >= {s_low} AND {low} < {s_high} AND {high} < {s_high})"  # see date.range_condition
        return eq if value.prefix == "eq" else f"NOT {eq}"
    if value.prefix == "ap":
        delta = abs(value.value).scaleb(-1)  # 10%, exact
        ctx = exact(value.value, delta)
        lo = sql.bind(ctx.subtract(value.value, delta), "numeric")
        hi = sql.bind(ctx.add(value.value, delta), "numeric")
        return f"({low} <= {hi} AND {high} >= {lo})"
    v = sql.bind(value.value, "numeric")
    return {
        "gt": f"{high} > {v}",
        "ge": f"{high} >= {v}",
        "lt": f"{low} < {v}",
        "le": f"{low} <= {v}",
        "sa": f"{low} > {v}",
        "eb": f"{high} < {v}",
    }[value.prefix]


def match(sql: Sql, a: str, value: NumberValue, modifier: str | None) -> str:
    return range_condition(sql, f"{a}.low", f"{a}.high", value)
