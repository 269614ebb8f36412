"""/healthz, /readyz, the X-Request-Id header and JSON log lines carrying it."""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from fastapi import FastAPI

from phix.storage.database import Database


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    health = await client.get("http://phix.test/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await client.get("http://phix.test/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_database_goes_away(
    app: FastAPI, client: httpx.AsyncClient, db_url: str, db_factory: Any
) -> None:
    assert (await client.get("http://phix.test/readyz")).status_code == 200
    name = urlsplit(db_url).path.lstrip("/")
    admin = await asyncpg.connect(db_factory.admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    ready = await client.get("http://phix.test/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "database unreachable"}
    assert (await client.get("http://phix.test/healthz")).status_code == 200  # alive, not ready


async def test_readyz_is_503_for_a_closed_port(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A pool whose server does not listen (nothing accepts on the port) is not ready."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{port}/phix", min_size=0)
        saved = app.state.db
        app.state.db = Database(pool)
        try:
            ready = await client.get("http://phix.test/readyz")
        finally:
            app.state.db = saved
            await pool.close()
    assert ready.status_code == 503
    assert ready.json() == {"status": "database unreachable"}


async def test_request_id_is_generated_or_echoed(client: httpx.AsyncClient) -> None:
    first = await client.get("/metadata")
    second = await client.get("/metadata")
    for response in (first, second):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]

    echoed = await client.get("/Patient/none", headers={"X-Request-Id": "gp-350304-0001"})
    assert echoed.status_code == 404
    assert echoed.headers["x-request-id"] == "gp-350304-0001"
    long = "r" * 100
    assert (await client.get("/metadata", headers={"X-Request-Id": long})).headers["x-request-id"] == long[
        :64
    ]
    # on every kind of answer, including routing errors and writes
    assert (await client.get("http://phix.test/nowhere", headers={"X-Request-Id": "a1"})).headers[
        "x-request-id"
    ] == "a1"
    created = await client.post("/Patient", json={"resourceType": "Patient"}, headers={"X-Request-Id": "w1"})
    assert created.headers["x-request-id"] == "w1"


async def test_access_log_lines_are_json_with_the_request_id(
    client: httpx.AsyncClient, json_log: list[dict[str, Any]]
) -> None:
    created = await client.post(
        "/Patient", json={"resourceType": "Patient"}, headers={"X-Request-Id": "log-1"}
    )
    missing = await client.get("/Patient/none")
    access = [line for line in json_log if line["logger"] == "phix.access"]
    by_id = {line["request_id"]: line for line in access}
    assert by_id["log-1"]["method"] == "POST"
    assert by_id["log-1"]["path"] == "/fhir/Patient"
    assert by_id["log-1"]["status"] == created.status_code == 201
    assert by_id["log-1"]["level"] == "info"
    assert isinstance(by_id["log-1"]["ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", by_id["log-1"]["ts"])
    generated = by_id[missing.headers["x-request-id"]]
    assert (generated["method"], generated["path"], generated["status"]) == ("GET", "/fhir/Patient/none", 404)
