"""A tiny SQL builder: numbered bind parameters, never user values in the SQL text."""

from __future__ import annotations

from typing import Any


class Sql:
    def __init__(self) -> None:
        self.args: list[Any] = []
        self._aliases = 0

    def bind(self, value: Any, cast: str) -> str:
        """Add a bind parameter and return its placeholder, with an explicit type cast."""
        self.args.append(value)
        return f"${len(self.args)}::{cast}"

    def alias(self, prefix: str = "i") -> str:
        """A fresh table alias for a nested sub-query."""
        self._aliases += 1
        return f"{prefix}{self._aliases}"


def like_prefix(value: str) -> str:
    """A LIKE pattern matching strings that start with ``value`` (escape character ``\\``)."""
    return escape_like(value) + "%"


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def any_of(clauses: list[str]) -> str:
    if not clauses:
        return "false"
    return clauses[0] if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")"


def all_of(clauses: list[str]) -> str:
    if not clauses:
        return "true"
    return clauses[0] if len(clauses) == 1 else "(" + " AND ".join(clauses) + ")"
