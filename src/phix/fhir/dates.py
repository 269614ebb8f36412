"""FHIR date/dateTime/instant values as half-open UTC ranges [low, high) by their precision."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from phix.errors import Category, FhirError

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def parse_instant_range(value: str, name: str = "date") -> tuple[datetime, datetime]:
    """``2024`` -> [2024-01-01, 2025-01-01); a full instant -> [t, t + 1 unit of its precision).

    Values without a time zone are taken as UTC.
    """
    match = _DATE.match(value.strip())
    if not match:
        raise FhirError(Category.INCORRECT, f"{name}: '{value}' is not a FHIR date, dateTime or instant")
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        month = int(g["m"])
        if g["d"] is None:
            low = datetime(year, month, 1, tzinfo=UTC)
            high = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
            return low, high
        day = int(g["d"])
        if g["H"] is None:
            low = datetime(year, month, day, tzinfo=UTC)
            return low, low + timedelta(days=1)
        tz: timezone = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        fraction = g["f"] or ""
        micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
        low = datetime(
            year, month, day, int(g["H"]), int(g["M"]), int(g["S"] or 0), micro, tzinfo=tz
        ).astimezone(UTC)
        if g["S"] is None:
            step = timedelta(minutes=1)
        elif fraction:
            step = timedelta(microseconds=10 ** max(0, 6 - (len(fraction) - 1)))
        else:
            step = timedelta(seconds=1)
        return low, low + step
    except ValueError as exc:
        raise FhirError(Category.INCORRECT, f"{name}: '{value}' is not a valid date: {exc}") from None
