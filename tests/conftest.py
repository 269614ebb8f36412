"""Shared fixtures: real PostgreSQL (embedded, and external when PHIX_TEST_DATABASE_URL is set).

Each test that touches the database gets its own database, cloned from a migrated template, so
tests are isolated without truncating anything. Tests that depend on ``db_url`` (directly or via
``app`` / ``client``) run once per backend.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from phix.app import create_app
from phix.settings import Settings, load_settings
from phix.storage.embedded import EmbeddedPostgres
from phix.storage.migrate import apply_migrations

BACKENDS = ["embedded"] + (["external"] if os.environ.get("PHIX_TEST_DATABASE_URL") else [])


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def embedded_dsn() -> Iterator[str]:
    data_dir = Path(tempfile.mkdtemp(prefix="phix-test-"))
    server = EmbeddedPostgres(data_dir)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def _throwaway_durability(dsn: str) -> None:
    """The test cluster's data is thrown away: skip fsync (CREATE/DROP DATABASE per test is ~10x faster).

    Only this temporary cluster is changed; servers started by ``phix serve`` keep full durability.
    """
    conn = await asyncpg.connect(dsn)
    try:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            await conn.execute(f"ALTER SYSTEM SET {setting} = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


class DatabaseFactory:
    """Creates per-test databases from a migrated template on one server."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.template = f"phix_tpl_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []

    async def setup(self) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(self.admin_dsn, self.template))
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    async def new(self) -> str:
        name = f"phix_t_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await admin.close()
        self.created.append(name)
        return with_database(self.admin_dsn, name)

    async def drop(self, dsn: str) -> None:
        name = urlsplit(dsn).path.lstrip("/")
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    async def teardown(self) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        finally:
            await admin.close()


_factories: dict[str, DatabaseFactory] = {}


@pytest.fixture(scope="session", params=BACKENDS)
async def db_factory(request: pytest.FixtureRequest) -> AsyncIterator[DatabaseFactory]:
    backend: str = request.param
    if backend == "external":
        admin = os.environ["PHIX_TEST_DATABASE_URL"]
    else:
        admin = request.getfixturevalue("embedded_dsn")
        await _throwaway_durability(admin)
    factory = DatabaseFactory(admin)
    await factory.setup()
    yield factory
    await factory.teardown()


@pytest.fixture
async def db_url(db_factory: DatabaseFactory) -> AsyncIterator[str]:
    """A fresh, migrated database for this test."""
    dsn = await db_factory.new()
    yield dsn
    await db_factory.drop(dsn)


@pytest.fixture
def disabled_domains() -> list[str]:
    """Domains left out of the ``app`` fixture; a test folder's conftest may override this."""
    return []


@pytest.fixture
def settings(db_url: str, tmp_path: Path, disabled_domains: list[str]) -> Settings:
    # Tests link Patients in the write transaction so that they can assert on residents at once;
    # the packaged default (the background worker) is tested in tests/mpi/test_linking.py.
    return load_settings(
        database_url=db_url,
        data_dir=tmp_path,
        environment="test",
        disabled_domains=disabled_domains,
        mpi={"linking": "sync"},
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir") as http:
        yield http


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_url)
    await connection.execute("SET TIME ZONE 'UTC'")
    yield connection
    await connection.close()


# -- one database and app per test module, for the many small parametrized cases ------------------
# Tests on these fixtures create what they need under fresh ids and check row-count deltas, so
# they do not depend on each other; starting an app per case would cost ~0.2 s each.


@pytest.fixture(scope="module")
def shared_disabled_domains() -> list[str]:
    """Domains left out of ``shared_app``; a folder's conftest may override this."""
    return []


@pytest.fixture(scope="module")
async def shared_db(db_factory: DatabaseFactory) -> AsyncIterator[str]:
    dsn: str = await db_factory.new()
    yield dsn
    await db_factory.drop(dsn)


@pytest.fixture(scope="module")
async def shared_app(
    shared_db: str, shared_disabled_domains: list[str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    settings = load_settings(
        database_url=shared_db,
        data_dir=tmp_path_factory.mktemp("data"),
        environment="test",
        disabled_domains=shared_disabled_domains,
        mpi={"linking": "sync"},
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def shared_client(shared_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=shared_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir") as http:
        yield http


@pytest.fixture
async def shared_conn(shared_db: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(shared_db)
    yield connection
    await connection.close()
