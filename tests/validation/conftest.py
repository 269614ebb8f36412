"""Validation and JSON-fidelity tests: the store without the patient index (whose golden Patient
records would add rows and versions to every Patient write; its interplay is tested in tests/mpi).

The many small cases share one app and database per module; each checks that it wrote nothing
(row counts before and after), so they do not depend on each other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

STORE_ONLY = ["mpi"]
SAMPLE = Path(__file__).resolve().parents[2] / "synthetic_data" / "bundles"


@pytest.fixture
def disabled_domains() -> list[str]:
    return list(STORE_ONLY)


@pytest.fixture(scope="module")
def shared_disabled_domains() -> list[str]:
    return list(STORE_ONLY)


@pytest.fixture(scope="module")
def api(shared_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return shared_client


@pytest.fixture
def db(shared_conn: asyncpg.Connection) -> asyncpg.Connection:
    return shared_conn


async def _counts(conn: asyncpg.Connection) -> tuple[int, ...]:
    """Rows of every table a write touches (resources, versions and the search index)."""
    tables = [
        "resources",
        "resource_versions",
        "search_token",
        "search_string",
        "search_quantity",
        "search_number",
        "search_reference",
    ]
    return tuple([int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in tables])


@pytest.fixture
def counts() -> Callable[[asyncpg.Connection], Any]:
    return _counts


def check_outcome(response: httpx.Response, status: int, *expected: Mapping[str, Any]) -> None:
    """The whole answer: status, media type and every issue, in order, with nothing else.

    Each expected issue gives ``code``, ``expression`` (a list, or absent for none) and
    ``diagnostics`` (the exact text, or a compiled pattern); severity is always "error".
    """
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/fhir+json"), response.headers
    body = response.json()
    assert set(body) == {"resourceType", "issue"} and body["resourceType"] == "OperationOutcome", body
    issues = body["issue"]
    assert len(issues) == len(expected), issues
    for got, want in zip(issues, expected, strict=True):
        assert set(got) <= {"severity", "code", "diagnostics", "expression"}, got
        assert got["severity"] == "error", got
        assert got["code"] == want["code"], got
        assert got.get("expression") == want.get("expression"), got
        diagnostics = want["diagnostics"]
        if isinstance(diagnostics, re.Pattern):
            assert diagnostics.fullmatch(got["diagnostics"]), got
        else:
            assert got["diagnostics"] == diagnostics, got


@pytest.fixture
def outcome() -> Callable[..., None]:
    return check_outcome


def _in_bundle(issue: Mapping[str, Any], res_type: str) -> dict[str, Any]:
    """An issue of a resource as a transaction reports it for entry 0."""
    entry = "Bundle.entry[0]"
    diagnostics = issue["diagnostics"]
    if isinstance(diagnostics, re.Pattern):
        diagnostics = re.compile(re.escape(f"{entry} (POST {res_type}): ") + diagnostics.pattern)
    else:
        diagnostics = f"{entry} (POST {res_type}): {diagnostics}"
    expression = [f"{entry}.resource{e[len(res_type) :]}" for e in issue["expression"]]
    return {"code": issue["code"], "expression": expression, "diagnostics": diagnostics}


async def _rejected(
    api: httpx.AsyncClient, conn: asyncpg.Connection, body: bytes, issues: list[Mapping[str, Any]]
) -> None:
    """``body`` (a resource without id) is refused with exactly ``issues`` by create, update and a
    transaction, and nothing is written."""
    before = await _counts(conn)
    res_type = orjson.loads(body)["resourceType"]
    headers = {"Content-Type": "application/fhir+json"}
    check_outcome(await api.post(f"/{res_type}", content=body, headers=headers), 422, *issues)
    with_id = body.replace(b"{", b'{"id":"v1",', 1)
    check_outcome(await api.put(f"/{res_type}/v1", content=with_id, headers=headers), 422, *issues)
    bundle = (
        b'{"resourceType":"Bundle","type":"transaction","entry":[{"resource":'
        + body
        + b',"request":{"method":"POST","url":"'
        + res_type.encode()
        + b'"}}]}'
    )
    located = [_in_bundle(issue, res_type) for issue in issues]
    check_outcome(await api.post("", content=bundle, headers=headers), 422, *located)
    assert await _counts(conn) == before


@pytest.fixture
def rejected() -> Callable[..., Any]:
    return _rejected


async def _accepted(api: httpx.AsyncClient, body: bytes) -> dict[str, Any]:
    created = await api.post(
        "/" + orjson.loads(body)["resourceType"],
        content=body,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert created.status_code == 201, created.text
    stored: dict[str, Any] = orjson.loads(created.content)
    sent = orjson.loads(body)
    assert {k: v for k, v in stored.items() if k not in ("id", "meta")} == sent
    return stored


@pytest.fixture
def accepted() -> Callable[..., Any]:
    return _accepted


def ele1(path: str, what: str) -> dict[str, Any]:
    return {
        "code": "invariant",
        "expression": [path],
        "diagnostics": f"ele-1: {what} at {path}; an element must have a value or children",
    }


def code_invalid(path: str, value: str, codes: list[str]) -> dict[str, Any]:
    listed = ", ".join(codes[:12]) + (f" ... ({len(codes) - 12} more)" if len(codes) > 12 else "")
    return {
        "code": "code-invalid",
        "expression": [path],
        "diagnostics": f"Code '{value}' at {path} is not in the required value set ({listed})",
    }


def required(path: str, detail: str = "") -> dict[str, Any]:
    return {
        "code": "required",
        "expression": [path],
        "diagnostics": f"Missing required element {path}{detail}",
    }


def value(path: str, diagnostics: str | re.Pattern[str]) -> dict[str, Any]:
    return {"code": "value", "expression": [path], "diagnostics": diagnostics}


def structure(path: str) -> dict[str, Any]:
    return {"code": "structure", "expression": [path], "diagnostics": f"Unknown element at {path}"}


_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "ele1": ele1,
    "code": code_invalid,
    "required": required,
    "value": value,
    "structure": structure,
}


def expect(*specs: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Expected issues from plain tuples (so test modules can parametrize without imports):
    ``("ele1", path, what)``, ``("code", path, value, codes)``, ``("required", path[, detail])``,
    ``("value", path, diagnostics)``, ``("structure", path)``."""
    return [_BUILDERS[kind](*args) for kind, *args in specs]


@pytest.fixture(name="expect")
def expect_fixture() -> Callable[..., list[dict[str, Any]]]:
    return expect


@pytest.fixture
def refused(api: httpx.AsyncClient, db: asyncpg.Connection) -> Callable[..., Any]:
    """``await refused(resource, issue_tuples)``: :func:`_rejected` of a resource dict with the
    issues :func:`expect` builds from the tuples (the table-driven tests' one line)."""

    async def run(resource: dict[str, Any], issues: list[tuple[Any, ...]]) -> None:
        await _rejected(api, db, orjson.dumps(resource), expect(*issues))

    return run
