"""Errors outside the interactions: unknown routes (404), wrong methods (405), oversized bodies (413),
unexpected failures (500); every one an OperationOutcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import FastAPI

from phix.app import create_app
from phix.settings import load_settings

LIMIT = 4096


@pytest.fixture
async def small_app(db_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = load_settings(
        database_url=db_url, data_dir=tmp_path, environment="test", fhir={"max_body_bytes": LIMIT}
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def small_client(small_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=small_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir") as http:
        yield http


@pytest.mark.parametrize(
    "url",
    ["http://phix.test/nothing-here", "http://phix.test/fhir/Patient/1/extra/segments/here", "/Patient/1/x"],
)
async def test_unknown_routes(shared_client: httpx.AsyncClient, outcome: Any, url: str) -> None:
    response = await shared_client.get(url)
    outcome(response, 404, {"code": "not-found", "diagnostics": "No route for GET /"})


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/Patient/1/_history/1"),
        ("DELETE", "/Patient/1/_history/1"),
        ("PUT", "/Patient/1/_history"),
        ("POST", "/Patient/1/_history"),
        ("PATCH", "/Patient/1/_history/1"),
    ],
)
async def test_wrong_methods(shared_client: httpx.AsyncClient, outcome: Any, method: str, url: str) -> None:
    response = await shared_client.request(method, url)
    outcome(response, 405, {"code": "not-supported", "diagnostics": f"Method {method} is not allowed"})
    assert "GET" in response.headers["allow"]


async def test_body_limit_by_content_length(
    small_client: httpx.AsyncClient, conn: asyncpg.Connection, outcome: Any, counts: Any
) -> None:
    padding = "x" * LIMIT
    big = orjson.dumps({"resourceType": "Patient", "name": [{"text": padding}]})
    response = await small_client.post(
        "/Patient", content=big, headers={"Content-Type": "application/fhir+json"}
    )
    outcome(response, 413, {"code": "too-costly", "diagnostics": f"exceeds {LIMIT} bytes"})
    assert response.headers["x-request-id"]
    put = await small_client.put("/Patient/big", content=big)
    outcome(put, 413, {"code": "too-costly"})
    patch = await small_client.patch(
        "/Patient/big",
        content=orjson.dumps([{"op": "add", "path": "/text", "value": padding}]),
        headers={"Content-Type": "application/json-patch+json"},
    )
    outcome(patch, 413, {"code": "too-costly"})
    assert await counts(conn) == (0, 0)
    # just under the limit is fine
    fits = orjson.dumps({"resourceType": "Patient", "name": [{"text": "x" * (LIMIT - 200)}]})
    assert len(fits) <= LIMIT
    assert (await small_client.post("/Patient", content=fits)).status_code == 201


async def test_body_limit_without_content_length(
    small_client: httpx.AsyncClient, conn: asyncpg.Connection, outcome: Any, counts: Any
) -> None:
    """A chunked body is counted as it arrives."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"resourceType": "Patient", "name": [{"text": "'
        for _ in range(LIMIT // 512 + 1):
            yield b"y" * 512
        yield b'"}]}'

    response = await small_client.post("/Patient", content=chunks())
    outcome(response, 413, {"code": "too-costly", "diagnostics": f"exceeds {LIMIT} bytes"})
    assert await counts(conn) == (0, 0)


async def test_default_body_limit_is_large(client: httpx.AsyncClient, app: FastAPI) -> None:
    assert app.state.settings.fhir.max_body_bytes == 16 * 1024 * 1024
    body = {"resourceType": "Patient", "name": [{"text": "z" * 200_000}]}
    assert (await client.post("/Patient", json=body)).status_code == 201


class Exploding:
    async def after_write(self, conn: asyncpg.Connection, version: Any, resource: Any) -> None:
        raise RuntimeError("listener bug")


async def test_unexpected_errors_are_an_outcome_and_roll_back(
    app: FastAPI, conn: asyncpg.Connection, outcome: Any, counts: Any, json_log: list[dict[str, Any]]
) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir") as http:
        created = await http.post("/Patient", json={"resourceType": "Patient"})
        assert created.status_code == 201
        res_id = created.json()["id"]
        before = await counts(conn)
        app.state.listeners.append(Exploding())
        try:
            response = await http.post(
                "/Patient", json={"resourceType": "Patient"}, headers={"X-Request-Id": "r-500"}
            )
            outcome(response, 500, {"code": "exception", "diagnostics": "Internal server error"})
            assert "listener bug" not in response.text  # no internals leak to the client
            assert response.headers["x-request-id"] == "r-500"
            update = await http.put(f"/Patient/{res_id}", json={"resourceType": "Patient", "id": res_id})
            outcome(update, 500, {"code": "exception"})
        finally:
            app.state.listeners.remove(next(x for x in app.state.listeners if isinstance(x, Exploding)))
        assert await counts(conn) == before  # the failed writes left nothing behind
        assert (await http.get(f"/Patient/{res_id}")).content == created.content
    [error] = [line for line in json_log if line["msg"] == "unhandled error"][:1]
    assert error["request_id"] == "r-500"
    assert error["level"] == "error"
    assert "RuntimeError: listener bug" in error["exc"]
    access = [line for line in json_log if line["logger"] == "phix.access" and line["request_id"] == "r-500"]
    assert [(a["method"], a["status"]) for a in access] == [("POST", 500)]
