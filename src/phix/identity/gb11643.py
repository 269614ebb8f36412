"""Chinese resident identity numbers (GB 11643-1999).

An 18-character ID is ``AAAAAA YYYYMMDD SSS C``: a 6-digit administrative area code, the birth
date, a 3-digit order code (odd for men, even for women) and a check character computed from the
first 17 digits with weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, sum mod 11 mapped through
``"10X98765432"``. Legacy 15-digit IDs (issued before 1999) are ``AAAAAA YYMMDD SSS`` with no check
character; they are upgraded by inserting ``"19"`` before the year and computing the check.

All functions accept raw input and normalise it first (see :func:`normalize`).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Literal

WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

_RE18 = re.compile(r"^[0-9]{17}[0-9X]$")
_RE15 = re.compile(r"^[0-9]{15}$")
_STRIP = re.compile(r"[\s\-]+")

Sex = Literal["male", "female"]


def normalize(raw: str) -> str:
    """Canonical form of a typed ID: full-width to ASCII, no blanks or hyphens, upper-case ``X``.

    >>> normalize(" ３５０３０４１９９００１０１１２３ｘ ")
    '35030419900101123X'
    """
    text = unicodedata.normalize("NFKC", raw)
    return _STRIP.sub("", text).upper()


def check_char(first17: str) -> str:
    """The check character for the first 17 digits of an 18-character ID."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"expected 17 ASCII digits, got {first17!r}")
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _date18(id18: str) -> dt.date | None:
    year = int(id18[6:10])
    if year < 1800:
        return None
    return _date(year, int(id18[10:12]), int(id18[12:14]))


def _date15(id15: str) -> dt.date | None:
    return _date(1900 + int(id15[6:8]), int(id15[8:10]), int(id15[10:12]))


def is_valid(id18: str) -> bool:
    """True for a well-formed 18-character ID: format, calendar date and check character."""
    value = normalize(id18)
    if not _RE18.match(value) or _date18(value) is None:
        return False
    return check_char(value[:17]) == value[17]


def is_valid15(id15: str) -> bool:
    """True for a well-formed legacy 15-digit ID (format and calendar date; it has no check)."""
    value = normalize(id15)
    return bool(_RE15.match(value)) and _date15(value) is not None


def upgrade15(id15: str) -> str:
    """The 18-character ID for a legacy 15-digit one: insert ``"19"`` and append the check."""
    value = normalize(id15)
    if not is_valid15(value):
        raise ValueError(f"not a valid 15-digit resident ID: {id15!r}")
    first17 = value[:6] + "19" + value[6:]
    return first17 + check_char(first17)


def to18(raw: str) -> str | None:
    """The 18-character form of a valid 18- or 15-character ID, else ``None``."""
    value = normalize(raw)
    if is_valid(value):
        return value
    if is_valid15(value):
        return upgrade15(value)
    return None


def birth_date(raw: str) -> dt.date | None:
    """Birth date encoded in an 18- or 15-character ID (checksum not required), else ``None``."""
    value = normalize(raw)
    if _RE18.match(value):
        return _date18(value)
    if _RE15.match(value):
        return _date15(value)
    return None


def sex(raw: str) -> Sex | None:
    """Sex encoded by the order code (odd digit = male), for 18- or 15-character IDs."""
    value = normalize(raw)
    if _RE18.match(value):
        digit = int(value[16])
    elif _RE15.match(value):
        digit = int(value[14])
    else:
        return None
    return "male" if digit % 2 == 1 else "female"


def area_code(raw: str) -> str | None:
    """The 6-digit administrative area code of an 18- or 15-character ID, else ``None``."""
    value = normalize(raw)
    if _RE18.match(value) or _RE15.match(value):
        return value[:6]
    return None


def make(area: str, born: dt.date, order: int) -> str:
    """Build a valid 18-character ID from its parts (``order`` 0-999; parity gives the sex)."""
    if len(area) != 6 or not area.isdigit() or not 0 <= order <= 999:
        raise ValueError("area must be 6 digits and order 0..999")
    first17 = f"{area}{born:%Y%m%d}{order:03d}"
    return first17 + check_char(first17)
