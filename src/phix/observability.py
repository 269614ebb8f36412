"""Structured (JSON) logs with the request id, and the ASGI middleware that sets it."""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from phix.errors import Category, FhirError, status_of, to_outcome

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    formatter_time = time.gmtime
    handler.formatter.converter = formatter_time  # type: ignore[union-attr]
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


access_log = logging.getLogger("phix.access")
log = logging.getLogger(__name__)


class RequestMiddleware:
    """Assigns a request id (or keeps the caller's ``X-Request-Id``), limits body size, logs access."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status_holder = [0]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await _too_large(self.max_body_bytes, send_with_id)
                return
            received = 0
            limit = self.max_body_bytes

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise FhirError(Category.TOO_LARGE, f"The request body exceeds {limit} bytes")
                return message

            try:
                await self.app(scope, limited_receive, send_with_id)
            except Exception:
                # Starlette's ServerErrorMiddleware (outermost) would answer after this middleware
                # has returned: the 500 would carry no X-Request-Id and its log line no request id.
                if status_holder[0]:
                    raise  # the response had started; nothing more can be said to the client
                log.exception("unhandled error", extra={"method": scope["method"], "path": scope["path"]})
                await _fault(send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status_holder[0],
                        "ms": round((time.perf_counter() - start) * 1000, 2),
                    },
                )
            request_id_var.reset(token)


async def _fault(send: Send) -> None:
    category = Category.FAULT
    body = orjson.dumps(
        to_outcome(category, FhirError(category, "Internal server error; see the server log").issues)
    )
    await send(
        {
            "type": "http.response.start",
            "status": status_of(category),
            "headers": [(b"content-type", b"application/fhir+json; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _too_large(limit: int, send: Send) -> None:
    category = Category.TOO_LARGE
    body = orjson.dumps(
        to_outcome(category, FhirError(category, f"The request body exceeds {limit} bytes").issues)
    )
    await send(
        {
            "type": "http.response.start",
            "status": status_of(category),
            "headers": [
                (b"content-type", b"application/fhir+json; charset=utf-8"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
