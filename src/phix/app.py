"""The ASGI application: ``create_app(settings)``. No import-time side effects."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from phix import metrics
from phix.errors import Category, FhirError, Issue, to_outcome
from phix.fhir import capability
from phix.fhir.conditional import Conditional
from phix.fhir.integrity import ReferentialIntegrity
from phix.fhir.interactions import (
    conditional,
    create,
    delete,
    history,
    patch,
    read,
    transaction,
    update,
    vread,
)
from phix.fhir.operations import everything
from phix.settings import Settings, load_settings
from phix.storage.database import Database, resolve_database_url
from phix.storage.repository import utc_now

log = logging.getLogger(__name__)

_HTTP_CATEGORIES = {
    400: Category.INCORRECT,
    404: Category.NOT_FOUND,
    405: Category.NOT_ALLOWED,
    406: Category.NOT_ACCEPTABLE,
    413: Category.TOO_LARGE,
    415: Category.UNSUPPORTED_MEDIA,
}


def _outcome_response(
    category: Category, issues: list[Issue], headers: dict[str, str] | None = None
) -> Response:
    from phix.errors import status_of

    return Response(
        orjson.dumps(to_outcome(category, issues)),
        status_code=status_of(category),
        headers=headers,
        media_type="application/fhir+json; charset=utf-8",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every error, from any route or none, leaves as an OperationOutcome."""

    async def fhir_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, FhirError)
        return _outcome_response(exc.category, exc.issues, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        category = _HTTP_CATEGORIES.get(exc.status_code, Category.INCORRECT)
        if exc.status_code == 404:
            message = f"No route for {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return _outcome_response(category, [Issue(message)], dict(exc.headers or {}))

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        issues = [
            Issue(str(e.get("msg")), (".".join(str(p) for p in e.get("loc", ())),)) for e in exc.errors()
        ]
        return _outcome_response(Category.INCORRECT, issues or [Issue("Invalid request")])

    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return _outcome_response(Category.FAULT, [Issue("Internal server error; see the server log")])

    app.add_exception_handler(FhirError, fhir_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


# Domain packages plug in through ``phix/<domain>/integration.py`` modules, each optional:
#   router: APIRouter            mounted under the FHIR base, before the generic /{type}/{id} routes
#   async startup(app) -> None   may set app.state.<x> and append WriteListeners to app.state.listeners
#   async shutdown(app) -> None
DOMAINS = (
    "phix.search.integration",
    "phix.mpi.integration",
    "phix.dicom.integration",
    "phix.consult.integration",
)


def installed_domains(disabled: Iterable[str] = ()) -> list[Any]:
    """The integration modules of the domains that are built and not disabled by settings."""
    skip = set(disabled)
    found = []
    for name in DOMAINS:
        if name.split(".")[1] in skip:
            continue
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that domain is not built (yet)
            raise
    return found


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    domains = installed_domains(settings.disabled_domains)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dsn, embedded = resolve_database_url(settings)
        db = await Database.connect(
            dsn,
            min_size=settings.db.pool_min,
            max_size=settings.db.pool_max,
            wait_seconds=settings.db.connect_wait,
        )
        app.state.db = db
        app.state.embedded = embedded
        app.state.listeners = []
        if settings.fhir.enforce_referential_integrity:
            app.state.listeners.append(ReferentialIntegrity(settings.server.public_base_url))
        started = []
        try:
            for domain in domains:
                if hasattr(domain, "startup"):
                    await domain.startup(app)
                started.append(domain)
            app.state.conditional = Conditional(
                getattr(app.state, "finder", None), settings.fhir.conditional_delete_max
            )
            yield
        finally:
            for domain in reversed(started):
                if hasattr(domain, "shutdown"):
                    await domain.shutdown(app)
            await db.close()
            if embedded is not None:
                embedded.stop()

    app = FastAPI(
        title="phix FHIR API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.public_base_url = settings.server.public_base_url
    app.state.clock = utc_now
    app.state.listeners = []
    app.state.operations = {}
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        db = getattr(request.app.state, "db", None)
        ok = db is not None and await db.ready()
        return Response(
            b'{"status":"ready"}' if ok else b'{"status":"database unreachable"}',
            status_code=200 if ok else 503,
            media_type="application/json",
        )

    metrics.install(app)  # GET /metrics; domains add their collectors to app.state.metrics
    prefix = settings.fhir.base_path
    app.include_router(capability.router, prefix=prefix)
    app.include_router(history.router, prefix=prefix)  # before /{type}/{id}
    app.include_router(transaction.router, prefix=prefix)
    app.include_router(everything.router, prefix=prefix)  # before /{type}/{id}/{compartment type}
    app.state.operations["everything"] = everything.DEFINITION
    for domain in domains:
        if getattr(domain, "router", None) is not None:
            app.include_router(domain.router, prefix=prefix)
    for module in (vread, read, create, update, patch, delete, conditional):
        app.include_router(module.router, prefix=prefix)

    from phix.observability import RequestMiddleware

    app.add_middleware(RequestMiddleware, max_body_bytes=settings.fhir.max_body_bytes)
    return app
