"""Storage tests count rows: run the app without listeners that write resources of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from phix.app import create_app
from phix.settings import Settings


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app without the patient index's listener (it writes golden-record Patients beside every
    Patient written); the search index listener stays, inside each write transaction."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        listeners = application.state.listeners
        listeners[:] = [li for li in listeners if type(li).__name__ != "MpiListener"]
        yield application


@pytest.fixture
def disabled_domains() -> list[str]:
    """Store semantics without the patient index's golden Patient records (tested in tests/mpi)."""
    return ["mpi"]
