"""Start-up against a database that is not there yet: wait and retry, or fail with a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest

from phix.storage.database import Database, DatabaseUnavailable, describe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _open_target(dsn: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection to the server of ``dsn`` (TCP, or the Unix socket of the embedded server)."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    if host.startswith("/"):
        return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
    return await asyncio.open_connection(host, port)


class LateProxy:
    """A TCP proxy to the test database that starts listening only after ``delay`` seconds, like
    a database container that comes up after the application."""

    def __init__(self, target_dsn: str, delay: float) -> None:
        self.target_dsn = target_dsn
        self.delay = delay
        self.port = _free_port()
        self.server: asyncio.base_events.Server | None = None
        self.accepted = 0

    @property
    def dsn(self) -> str:
        parts = urlsplit(self.target_dsn)
        user = parts.username or "postgres"
        return urlunsplit(("postgresql", f"{user}@127.0.0.1:{self.port}", parts.path, "", ""))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        target_reader, target_writer = await _open_target(self.target_dsn)
        await asyncio.gather(self._pipe(reader, target_writer), self._pipe(target_reader, writer))

    async def start_later(self) -> None:
        await asyncio.sleep(self.delay)
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_start_up_waits_for_a_database_that_comes_up_later(db_url: str) -> None:
    proxy = LateProxy(db_url, delay=1.5)
    starter = asyncio.create_task(proxy.start_later())
    started = time.monotonic()
    db = await Database.connect(proxy.dsn, min_size=1, max_size=2, wait_seconds=20)
    try:
        assert time.monotonic() - started >= 1.4  # it really waited for the listener
        assert proxy.accepted >= 1
        assert await db.ready()
        async with db.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM resources") == 0  # migrated, reachable
    finally:
        await db.close()
        await starter
        await proxy.close()


async def test_start_up_gives_up_with_a_clear_error_and_no_password() -> None:
    port = _free_port()  # nothing listens here
    dsn = f"postgresql://phix:s3cret@127.0.0.1:{port}/phix"
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as raised:
        await Database.connect(dsn, wait_seconds=1.0)
    waited = time.monotonic() - started
    assert 1.0 <= waited < 8.0
    message = str(raised.value)
    assert f"127.0.0.1:{port}/phix" in message and "not reachable after 1 s" in message
    assert "s3cret" not in message and "s3cret" not in describe(dsn)


async def test_without_a_wait_a_missing_database_fails_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        await Database.connect(f"postgresql://postgres@127.0.0.1:{_free_port()}/x", wait_seconds=0)
    assert time.monotonic() - started < 5.0
