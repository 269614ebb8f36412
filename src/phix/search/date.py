"""Date parameters: every value is a half-open instant range ``[low, high)``.

A date's range follows its precision: ``2024`` is the whole year, ``2024-05-01T10:00:00Z`` one
second. Values without a time zone (dates, and date-times that omit it) are taken in
:data:`LOCAL_TZ` (China Standard Time, the region this server runs for), consistently for the index
and for the query. Period start/end open ends become the far past/future; a Timing contributes its
events and its ``repeat.boundsPeriod``.

Prefixes (search range ``[sL, sH)``, target range ``[low, high)``), after FHIR R4 3.1.1.4 and HAPI:
``eq`` low >= sL and high <= sH; ``ne`` not eq; ``gt`` high > sH; ``ge`` high > sL;
``lt`` low < sL; ``le`` low < sH; ``sa`` low >= sH; ``eb`` high <= sL; ``ap`` the ranges overlap
once the search range is widened by 10% of its distance from now (at least one day).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from phix.search.errors import bad_value
from phix.search.model import Node
from phix.search.prefix import PREFIXES, split_prefix
from phix.search.sql import Sql

TABLE = "search_date"
COLUMNS = ("low", "high")
MODIFIERS = frozenset({"missing"})
SORT_ASC = "min({a}.low)"
SORT_DESC = "max({a}.high)"

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MIN = datetime(1, 1, 2, tzinfo=UTC)
MAX = datetime(9999, 12, 30, tzinfo=UTC)

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)

Range = tuple[datetime, datetime]


def parse_range(text: str) -> Range | None:
    """A FHIR date/dateTime/instant (or partial search date) -> [low, high), or None if malformed."""
    match = _DATE.match(text.strip())
    if not match:
        return None
    g = match.groupdict()
    tz: timezone | ZoneInfo = LOCAL_TZ
    if g["tz"]:
        if g["tz"] == "Z":
            tz = UTC
        else:
            sign = -1 if g["tz"][0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][4:6])))
    try:
        year = int(g["y"])
        if g["m"] is None:
            low = datetime(year, 1, 1, tzinfo=tz)
            high = datetime(year + 1, 1, 1, tzinfo=tz) if year < 9999 else MAX
        elif g["d"] is None:
            month = int(g["m"])
            low = datetime(year, month, 1, tzinfo=tz)
            high = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz) if year < 9999 else MAX
        elif g["H"] is None:
            low = datetime(year, int(g["m"]), int(g["d"]), tzinfo=tz)
            high = low + timedelta(days=1)
        else:
            frac = g["f"] or ""
            micro = int((frac + "000000")[:6]) if frac else 0
            low = datetime(
                year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), int(g["S"] or 0), micro, tzinfo=tz
            )
            if g["S"] is None:
                step = timedelta(minutes=1)
            elif frac:
                step = timedelta(microseconds=10 ** max(0, 6 - len(frac)))
            else:
                step = timedelta(seconds=1)
            high = low + step
    except (ValueError, OverflowError):
        return None
    return _clamp(low), _clamp(high)


def _clamp(value: datetime) -> datetime:
    try:
        return min(max(value, MIN), MAX)
    except OverflowError:  # pragma: no cover
        return MIN if value.year < 2 else MAX


def ranges_of(value: Any, type_name: str) -> list[Range]:
    if isinstance(value, str):
        found = parse_range(value)
        return [found] if found else []
    if not isinstance(value, dict):
        return []
    if type_name == "Period" or "start" in value or "end" in value:
        start = parse_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = parse_range(value["end"]) if isinstance(value.get("end"), str) else None
        if start is None and end is None:
            return []
        return [(start[0] if start else MIN, end[1] if end else MAX)]
    if type_name == "Timing" or "event" in value or "repeat" in value:
        out = [r for e in value.get("event", []) if isinstance(e, str) and (r := parse_range(e))]
        bounds = (value.get("repeat") or {}).get("boundsPeriod")
        if isinstance(bounds, dict):
            out.extend(ranges_of(bounds, "Period"))
        return out
    return []


def extract(nodes: list[Node]) -> list[tuple[Any, ...]]:
    rows: dict[Range, None] = {}
    for value, type_name in nodes:
        for found in ranges_of(value, type_name):
            rows[found] = None
    return list(rows)


@dataclass(frozen=True)
class DateValue:
    prefix: str
    low: datetime
    high: datetime


def parse(name: str, raw: str, modifier: str | None) -> DateValue:
    prefix, text = split_prefix(raw)
    found = parse_range(text)
    if found is None:
        raise bad_value(name, raw, "not a FHIR date, dateTime or instant (e.g. 2024, 2024-05, ge2024-05-01)")
    return DateValue(prefix, *found)


def _approximate(value: DateValue, now: datetime | None = None) -> Range:
    now = now or datetime.now(UTC)
    distance = abs(now - value.low)
    widen = max(distance / 10, timedelta(days=1))
    return _clamp(value.low - widen) if value.low - MIN > widen else MIN, (
        _clamp(value.high + widen) if MAX - value.high > widen else MAX
    )


def match(sql: Sql, a: str, value: DateValue, modifier: str | None) -> str:
    return range_condition(sql, f"{a}.low", f"{a}.high", value)


def range_condition(sql: Sql, low: str, high: str, value: DateValue, *, point: bool = False) -> str:
    """The prefix condition on a stored ``[low, high)`` (``point``: a single instant in ``low``)."""
    if value.prefix not in PREFIXES:  # pragma: no cover - split_prefix guarantees it
        raise ValueError(value.prefix)
    if value.prefix == "ap":
        a_low, a_high = _approximate(value)
        w_low, w_high = sql.bind(a_low, "timestamptz"), sql.bind(a_high, "timestamptz")
        if point:
            return f"({low} >= {w_low} AND {low} < {w_high})"
        return f"({low} < {w_high} AND {high} > {w_low})"
    prefix = value.prefix

    def lo() -> str:
        return sql.bind(value.low, "timestamptz")

    def hi() -> str:
        return sql.bind(value.high, "timestamptz")

    if point:  # the target range is [t, t + 1 microsecond)
        if prefix in ("eq", "ne"):
            eq = f"({low} >= {lo()} AND {low} < {hi()})"
            return eq if prefix == "eq" else f"NOT {eq}"
        column, op, bound = {
            "gt": (low, ">=", hi),
            "ge": (low, ">=", lo),
            "lt": (low, "<", lo),
            "le": (low, "<", hi),
            "sa": (low, ">=", hi),
            "eb": (low, "<", lo),
        }[prefix]
        return f"{column} {op} {bound()}"
    if prefix in ("eq", "ne"):
        # low < sH follows from low < high <= sH; stating it bounds the index range scan on
        # (ph, low) at both ends and gives the planner a realistic estimate (low and high are
        # correlated, which it cannot know).
        s_high = hi()
        eq = f"({low} >= {lo()} AND {low} < {s_high} AND {high} <= {s_high})"
        return eq if prefix == "eq" else f"NOT {eq}"
    column, op, bound = {
        "gt": (high, ">", hi),
        "ge": (high, ">", lo),
        "lt": (low, "<", lo),
        "le": (low, "<", hi),
        "sa": (low, ">=", hi),
        "eb": (high, "<=", lo),
    }[prefix]
    return f"{column} {op} {bound()}"
