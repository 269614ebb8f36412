"""FHIR search value escaping: ``\\,`` ``\\$`` ``\\|`` and ``\\\\`` are literal characters."""

from __future__ import annotations


def split_unescaped(value: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not preceded by an escaping backslash; keep escapes."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(value: str) -> str:
    """Remove the escaping backslash before ``, $ | \\``; other backslashes stay."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in ",$|\\":
            out.append(value[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def escape(value: str) -> str:
    """The inverse of :func:`unescape` (used to write ``self``/``next`` links)."""
    return "".join("\\" + ch if ch in ",$|\\" else ch for ch in value)
