"""Referential integrity: a write that references a local resource that does not exist -> 409.

Runs as a write listener inside the write transaction. A transaction bundle defers the check to
its end (:func:`deferred_references`), because an entry may reference a resource that a later
entry of the same bundle creates.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import asyncpg

from phix.fhir.references import check_targets_exist, local_targets
from phix.storage.repository import Version, Written

_deferred: contextvars.ContextVar[dict[tuple[str, str], str] | None] = contextvars.ContextVar(
    "deferred_references", default=None
)


@contextmanager
def deferred_references() -> Iterator[dict[tuple[str, str], str]]:
    """Collect targets instead of checking them; the caller checks the collection at the end."""
    collected: dict[tuple[str, str], str] = {}
    token = _deferred.set(collected)
    try:
        yield collected
    finally:
        _deferred.reset(token)


class ReferentialIntegrity:
    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url

    async def after_write(
        self, conn: asyncpg.Connection, version: Version, resource: dict[str, Any] | None
    ) -> None:
        await self.after_write_many(conn, [(version, resource)])

    async def after_write_many(self, conn: asyncpg.Connection, written: Sequence[Written]) -> None:
        """The targets of a batch, checked in one query (or collected, inside a transaction bundle)."""
        targets: dict[tuple[str, str], str] = {}
        for version, resource in written:
            if resource is None:
                continue
            own = local_targets(resource, self.base_url, version.res_type)
            own.pop((version.res_type, version.res_id), None)  # a self-reference is fine
            for key, path in own.items():
                targets.setdefault(key, path)
        if not targets:
            return
        collected = _deferred.get()
        if collected is not None:
            for key, path in targets.items():
                collected.setdefault(key, path)
            return
        await check_targets_exist(conn, targets)
