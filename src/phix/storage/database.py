"""Connection management: the asyncpg pool of one process, and where the server comes from."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from phix.settings import Settings
from phix.storage.embedded import EmbeddedPostgres
from phix.storage.migrate import apply_migrations


def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The DSN to use, starting the embedded server when no external URL is configured."""
    if settings.database_url:
        return settings.database_url, None
    embedded = EmbeddedPostgres(Path(settings.data_dir))
    return embedded.start(), embedded


log = logging.getLogger(__name__)

# What a database that is not there (yet) raises: refused or unreachable, still starting up,
# or too many connections while it recovers.
_NOT_YET = (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached within the start-up wait."""


def describe(dsn: str) -> str:
    """Where a DSN points, without its credentials (for logs and errors)."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or ''}"


async def first_connection(dsn: str, wait_seconds: float) -> asyncpg.Connection:
    """Connect, retrying with back-off for up to ``wait_seconds`` while the database is not up
    yet (a container that starts before its database, a database restarting): the process
    starts as soon as the database answers instead of failing at once."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.25
    while True:
        try:
            conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=min(10.0, max(1.0, wait_seconds)))
            return conn
        except _NOT_YET as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseUnavailable(
                    f"database {describe(dsn)} not reachable after {wait_seconds:g} s:"
                    f" {type(exc).__name__}: {exc}"
                ) from exc
            log.warning(
                "database not reachable yet; retrying",
                extra={"database": describe(dsn), "error": f"{type(exc).__name__}: {exc}"},
            )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """On release to the pool, asyncpg already rolls back an open transaction; skip the rest.

    Its default reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) costs one more round trip
    per request; phix keeps no session state beyond the time zone set at connect, its advisory
    locks are transaction-scoped, and LISTEN uses dedicated connections.
    """
    del conn


class Database:
    """One asyncpg pool. Created per process (each uvicorn worker has its own)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        migrate: bool = True,
        wait_seconds: float = 0.0,
    ) -> Database:
        """The pool (after the migrations); waits up to ``wait_seconds`` for the database to answer."""
        conn = await first_connection(dsn, wait_seconds)
        try:
            if migrate:
                await apply_migrations(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_reset_connection,
            statement_cache_size=1024,
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def ready(self) -> bool:
        try:
            async with self.pool.acquire(timeout=2) as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn
