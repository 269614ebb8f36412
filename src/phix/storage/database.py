"""Connection management: the asyncpg pool of one process, and where the server comes from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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
        cls, dsn: str, *, min_size: int = 2, max_size: int = 10, migrate: bool = True
    ) -> Database:
        if migrate:
            conn = await asyncpg.connect(dsn)
            try:
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
