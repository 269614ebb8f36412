"""How the consult domain plugs into the app (see ``phix.app.DOMAINS``).

``startup`` reads :class:`ConsultSettings` (``app.state.consult_settings`` if set beforehand,
else ``PHIX_CONSULT__*``), appends the write listener, declares the operations, registers the
Prometheus collector (and mounts ``GET /metrics``), and starts the background scheduler unless
``scheduler_enabled`` is false. State it leaves for others and for tests:

``app.state.consult`` (:class:`ConsultService`), ``app.state.consult_scheduler``
(:class:`Scheduler`, ``await ...run_due(conn, now)``), ``app.state.consult_outbox``
(:class:`Deliverer`, ``await ...deliver_due(now)``).
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from fastapi import APIRouter, FastAPI

from phix import metrics
from phix.consult import operations, timeliness_api
from phix.consult.listeners import ConsultListener
from phix.consult.metrics import ConsultCollector
from phix.consult.outbox import Deliverer
from phix.consult.scheduler import Scheduler, run_forever
from phix.consult.service import ConsultService
from phix.consult.settings import ConsultSettings, load_consult_settings

router = APIRouter()
router.include_router(operations.router)
router.include_router(timeliness_api.router)


async def startup(app: FastAPI) -> None:
    settings = getattr(app.state, "consult_settings", None)
    if not isinstance(settings, ConsultSettings):
        settings = load_consult_settings()
        app.state.consult_settings = settings
    state = app.state
    service = ConsultService(settings, lambda: state.listeners, lambda: state.clock())
    state.consult = service
    state.listeners.append(ConsultListener(service))
    state.operations.update(operations.definitions())
    state.operations["consult-timeliness"] = timeliness_api.DEFINITION
    scheduler = Scheduler(service)
    state.consult_scheduler = scheduler
    state.consult_http = httpx.AsyncClient(follow_redirects=False)
    deliverer = Deliverer(state.db.pool, settings, state.consult_http)
    state.consult_outbox = deliverer

    collector = ConsultCollector(lambda: state.db.pool, lambda: state.clock())
    metrics.install(app).register(collector)
    metrics.add_refresher(app, collector.refresh)
    state.consult_collector = collector

    async def tick() -> None:
        now = state.clock()
        async with state.db.pool.acquire() as conn:
            await scheduler.run_due(conn, now)
        await deliverer.deliver_due(now)

    state.consult_tick = tick
    state.consult_loop = None
    if settings.scheduler_enabled:
        state.consult_loop = asyncio.create_task(
            run_forever(tick, settings.scheduler_interval_seconds), name="phix-consult-scheduler"
        )


async def shutdown(app: FastAPI) -> None:
    state = app.state
    loop = getattr(state, "consult_loop", None)
    if loop is not None:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        state.consult_loop = None
    collector = getattr(state, "consult_collector", None)
    if collector is not None:
        metrics.remove_refresher(app, collector.refresh)
        with contextlib.suppress(KeyError):
            state.metrics.unregister(collector)
    client = getattr(state, "consult_http", None)
    if client is not None:
        await client.aclose()
