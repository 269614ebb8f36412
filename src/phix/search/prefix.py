"""Comparison prefixes of number, date and quantity values (``ge2024``, ``lt5.4``)."""

from __future__ import annotations

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def split_prefix(raw: str) -> tuple[str, str]:
    """``ge2024`` -> (``ge``, ``2024``); no prefix -> ``eq``."""
    if len(raw) > 2 and raw[:2] in PREFIXES and not raw[2].isalpha():
        return raw[:2], raw[2:]
    return "eq", raw
