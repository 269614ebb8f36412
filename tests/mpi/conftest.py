"""Fixtures of the patient-index tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from phix import app as app_module
from phix.settings import Settings

# The patient index needs the search index (golden records are searchable, $everything) and
# nothing else; other domains are left out so their own start-up needs do not matter here.
DOMAINS = ("phix.search.integration", "phix.mpi.integration")


@pytest.fixture
async def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FastAPI]:
    monkeypatch.setattr(app_module, "DOMAINS", DOMAINS)
    application = app_module.create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def wait_linked(
    conn: asyncpg.Connection, patient_ids: list[str], timeout: float = 10.0
) -> dict[str, str]:
    """Wait until the worker has linked every record; returns patient id -> resident id."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await conn.fetch(
            "SELECT patient_id, golden_id FROM mpi_record WHERE patient_id = ANY($1::text[])"
            " AND golden_id IS NOT NULL AND patient_id NOT IN (SELECT patient_id FROM mpi_pending)",
            patient_ids,
        )
        if len(rows) == len(set(patient_ids)):
            return {r["patient_id"]: r["golden_id"] for r in rows}
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"not linked in {timeout}s: {sorted(set(patient_ids) - {r['patient_id'] for r in rows})}"
            )
        await asyncio.sleep(0.05)


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    response = await client.post("/Patient", json=resource)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
