"""A small, real-shaped Putian dataset written through the API, and query helpers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from phix.app import create_app
from phix.settings import Settings

# Organizations, a practitioner, three patients (陈明, 曾华 deceased, José Müller), a blood pressure
# panel with components, two glucose results (5.4 mmol/L; 6100 umol/L), an encounter, a condition
# and a provenance; written in dependency order (referential integrity is enforced).
DATASET: list[dict[str, Any]] = json.loads((Path(__file__).parent / "dataset.json").read_text("utf-8"))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app without the patient index's listener: its golden-record Patients would join every
    Patient result here, and these tests are about search, not linkage."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        listeners = application.state.listeners
        listeners[:] = [li for li in listeners if type(li).__name__ != "MpiListener"]
        yield application


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    for resource in DATASET:
        await put(client, resource)
    return client


Finder = Callable[..., Awaitable[list[str]]]


@pytest.fixture
def ids(seeded: httpx.AsyncClient) -> Finder:
    """``await ids("Patient", ("name", "chen"), ...)`` -> sorted ids of the matches (asserts 200)."""

    async def run(path: str, *params: tuple[str, str], headers: dict[str, str] | None = None) -> list[str]:
        response = await seeded.get(f"/{path}", params=list(params), headers=headers or {})
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
        return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match")

    return run
