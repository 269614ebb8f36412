"""Fixtures of the consult tests: an app with a controllable clock and no background scheduler."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from phix.app import create_app
from phix.consult.settings import ConsultSettings
from phix.settings import Settings

from .world import Clock, Receiver, seed


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def consult_settings() -> ConsultSettings:
    return ConsultSettings(scheduler_enabled=False, delivery_backoff_seconds=10, delivery_max_attempts=4)


@pytest.fixture
async def capp(settings: Settings, consult_settings: ConsultSettings, clock: Clock) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    application.state.consult_settings = consult_settings
    application.state.clock = clock
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def cclient(capp: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=capp)
    async with httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir") as http:
        await seed(http)
        yield http


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.stop()
