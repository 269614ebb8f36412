"""Schema migrations: in order, once, also when several processes start together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from phix.storage.migrate import apply_migrations, available


@pytest.fixture
async def empty_db(db_factory: Any) -> AsyncIterator[str]:
    """A database with nothing in it (not cloned from the migrated template)."""
    from urllib.parse import urlsplit, urlunsplit

    name = f"phix_empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(db_factory.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(db_factory.admin_dsn)
    yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    admin = await asyncpg.connect(db_factory.admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def test_available_migrations_are_numbered_and_ordered() -> None:
    found = available()
    assert found, "no migration found"
    numbers = [m.version for m in found]
    assert numbers == sorted(set(numbers))
    assert found[0].version == 1 and found[0].name == "resources"
    assert all(m.sql.strip() for m in found)


async def test_migrations_apply_once(empty_db: str) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        applied = await apply_migrations(conn)
        assert applied == [m.version for m in available()]
        assert await apply_migrations(conn) == []
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in available()]
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
        assert {"resources", "resource_versions", "schema_migrations"} <= tables
    finally:
        await conn.close()


async def test_concurrent_starts_apply_each_migration_once(empty_db: str) -> None:
    conns = [await asyncpg.connect(empty_db) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        applied = sorted(v for result in results for v in result)
        assert applied == [m.version for m in available()]
        assert sum(1 for result in results if result) == 1  # one process did everything
    finally:
        for c in conns:
            await c.close()


async def test_the_test_databases_are_migrated(conn: asyncpg.Connection) -> None:
    versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in available()]
