"""Plugs the search engine into the app: registry, index listener, finder, routes."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI

from phix.search.indexer import clear_resource, index_resource
from phix.search.registry import Registry, load_registry
from phix.storage.repository import Version

PROFILES_DIR = Path(__file__).resolve().parents[3] / "profiles"


class SearchIndexListener:
    """Keeps the typed index tables in step with every write, in the same transaction."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def after_write(
        self, conn: asyncpg.Connection, version: Version, resource: dict[str, Any] | None
    ) -> None:
        if resource is None:
            await clear_resource(conn, version.rid)
        else:
            await index_resource(conn, self.registry, version.rid, version.res_type, resource)


def profiles_dir(app: FastAPI) -> Path | None:
    configured = getattr(app.state.settings, "profiles_dir", None)
    path = Path(configured) if configured else PROFILES_DIR
    return path if path.is_dir() else None


async def startup(app: FastAPI) -> None:
    registry = load_registry(profiles_dir(app))
    app.state.registry = registry
    app.state.listeners.append(SearchIndexListener(registry))
    try:
        service = importlib.import_module("phix.search.service")
    except ModuleNotFoundError:
        return

    async def finder(
        conn: asyncpg.Connection, res_type: str, params: list[tuple[str, str]], *, limit: int | None = None
    ) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = await service.find(conn, registry, res_type, params, limit=limit)
        return found

    app.state.finder = finder
