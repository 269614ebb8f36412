"""Administrative area codes of Putian (GB/T 2260) and the years they were in use.

The area code in a resident ID is where the person was first registered; people keep their IDs
when districts are reorganised, so treat it as a soft signal, never as a validation rule.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Area:
    code: str
    name: str
    valid_from: int
    valid_until: int | None  # last year of use, None while current


PUTIAN_AREAS: tuple[Area, ...] = (
    Area("350302", "莆田市城厢区", 1983, None),
    Area("350303", "莆田市涵江区", 1983, None),
    Area("350304", "莆田市荔城区", 2002, None),
    Area("350305", "莆田市秀屿区", 2002, None),
    Area("350321", "莆田县", 1983, 2002),
    Area("350322", "仙游县", 1983, None),
)

PUTIAN_AREA_CODES: frozenset[str] = frozenset(a.code for a in PUTIAN_AREAS)


def area_name(code: str) -> str | None:
    """The Chinese name of a Putian area code, ``None`` for codes outside Putian."""
    for area in PUTIAN_AREAS:
        if area.code == code:
            return area.name
    return None


def is_putian(code: str) -> bool:
    return code in PUTIAN_AREA_CODES
