"""How the search engine plugs into the app (see ``phix.app.DOMAINS``).

* ``router``: the search routes (``phix.fhir.interactions.search``).
* ``startup``: loads the registry (standard R4 + ``profiles/``) into ``app.state.registry``, sets
  ``app.state.finder`` (conditional operations) and adds the index writer to the write listeners.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI

from phix.fhir.interactions.search import router
from phix.search.extract import Rows
from phix.search.indexer import prepare_rows, write_rows
from phix.search.registry import Registry, load_registry
from phix.search.service import find
from phix.storage.repository import Version, Written

# The repository's profiles/ folder (editable install / source checkout).
_SOURCE_PROFILES = Path(__file__).resolve().parents[3] / "profiles"


def profiles_dir(settings: Any) -> Path | None:
    """``settings.profiles_dir`` if configured, else ``./profiles``, else the source tree's."""
    configured = getattr(settings, "profiles_dir", None)
    if configured:
        return Path(configured)
    for candidate in (Path("profiles"), _SOURCE_PROFILES):
        if candidate.is_dir():
            return candidate
    return None


class SearchIndexer:
    """Write listener: keeps the index rows of every written resource current."""

    # Inside Repository.deferring() (transaction bundles) the rows of all writes go in one batch.
    deferrable = True

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def after_write(
        self, conn: asyncpg.Connection, version: Version, resource: dict[str, Any] | None
    ) -> None:
        await self.after_write_many(conn, [(version, resource)])

    async def after_write_many(self, conn: asyncpg.Connection, written: Sequence[Written]) -> None:
        """A batch's index rows in at most two statements: first versions (a new rid has no rows
        to replace) and later versions or deletions (their rows are replaced or cleared)."""
        first: list[tuple[int, Rows]] = []
        later: list[tuple[int, Rows]] = []
        for version, resource in written:
            if resource is None or version.deleted:
                later.append((version.rid, {}))
                continue
            rows = prepare_rows(self.registry, version.res_type, resource)
            (first if version.version == 1 else later).append((version.rid, rows))
        await write_rows(conn, first, fresh=True)
        await write_rows(conn, later)


class Finder:
    """``app.state.finder``: search criteria -> (rid, id) for conditional operations."""

    def __init__(self, registry: Registry, base_url: str | None) -> None:
        self.registry = registry
        self.base_url = base_url

    async def __call__(
        self,
        conn: asyncpg.Connection,
        res_type: str,
        params: list[tuple[str, str]],
        *,
        limit: int | None = None,
    ) -> list[tuple[int, str]]:
        return await find(conn, self.registry, res_type, params, limit=limit, base_url=self.base_url)


_registries: dict[tuple[str, float], Registry] = {}


def cached_registry(folder: Path | None) -> Registry:
    """One registry per profiles folder and its modification time: apps started again in the same
    process (tests, reloads) reuse it instead of compiling ~500 definitions again (~0.2 s)."""
    key = (str(folder), folder.stat().st_mtime if folder is not None else 0.0)
    registry = _registries.get(key)
    if registry is None:
        registry = _registries[key] = load_registry(folder)
    return registry


async def startup(app: FastAPI) -> None:
    settings = app.state.settings
    registry = cached_registry(profiles_dir(settings))
    app.state.registry = registry
    app.state.finder = Finder(registry, settings.server.public_base_url)
    app.state.listeners.append(SearchIndexer(registry))


__all__ = ["Finder", "SearchIndexer", "router", "startup"]
