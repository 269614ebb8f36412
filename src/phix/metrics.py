"""The platform's Prometheus endpoint: ``GET /metrics`` over one ``CollectorRegistry`` per app.

Any domain registers its metrics on ``app.state.metrics`` (a ``CollectorRegistry``) after calling
:func:`install` (idempotent; the first caller creates the registry and mounts the route). Metrics
that live in the database (shared by every worker process, surviving restarts) are best exported
by a collector that reads a snapshot refreshed just before each scrape: register an async
refresher with :func:`add_refresher`. A failing refresher is logged and its metrics keep their
previous snapshot; the scrape still answers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

Refresher = Callable[[], Awaitable[None]]
PATH = "/metrics"


def install(app: FastAPI) -> CollectorRegistry:
    """The app's registry, created with process, platform and GC metrics on first call."""
    registry = getattr(app.state, "metrics", None)
    if not isinstance(registry, CollectorRegistry):
        registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        app.state.metrics = registry
    if not hasattr(app.state, "metrics_refreshers"):
        app.state.metrics_refreshers = []
    if not any(getattr(route, "path", None) == PATH for route in app.router.routes):
        app.add_api_route(PATH, metrics, methods=["GET"], include_in_schema=False, name="metrics")
    return registry


def add_refresher(app: FastAPI, refresher: Refresher) -> None:
    install(app)
    app.state.metrics_refreshers.append(refresher)


def remove_refresher(app: FastAPI, refresher: Refresher) -> None:
    refreshers = getattr(app.state, "metrics_refreshers", [])
    if refresher in refreshers:
        refreshers.remove(refresher)


async def metrics(request: Request) -> Response:
    state = request.app.state
    for refresher in list(getattr(state, "metrics_refreshers", [])):
        try:
            await refresher()
        except Exception:
            log.exception("metrics refresher failed", extra={"refresher": repr(refresher)})
    return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)
