"""``phix serve``: the FHIR API under uvicorn, on embedded or external PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from phix.observability import configure_logging
from phix.settings import load_settings

log = logging.getLogger("phix.serve")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="run the FHIR API")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument(
        "--data-dir", type=Path, help="data directory for the embedded database (default ./var)"
    )
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--demo", action="store_true", help="load synthetic_data/ on the first start")
    serve.set_defaults(func=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from phix.storage.database import DatabaseUnavailable, resolve_database_url

    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    settings = load_settings(**overrides)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    workers = args.workers or settings.server.workers
    configure_logging(settings.log_level)

    # SIGTERM becomes SystemExit (uvicorn also re-raises it after its graceful shutdown), so the
    # embedded PostgreSQL is stopped in the finally below instead of the process dying on the signal.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    dsn, embedded = resolve_database_url(settings)
    try:
        try:
            asyncio.run(_migrate(dsn, settings.db.connect_wait))
        except DatabaseUnavailable as exc:
            print(f"phix: {exc}", file=sys.stderr, flush=True)
            return 1
        # Workers (separate processes) find the database through the environment.
        os.environ["PHIX_DATABASE_URL"] = dsn
        os.environ["PHIX_DATA_DIR"] = str(settings.data_dir)
        base = f"http://{host}:{port}"
        print(f"phix FHIR API:      {base}{settings.fhir.base_path}", flush=True)
        print(f"CapabilityStatement: {base}{settings.fhir.base_path}/metadata", flush=True)
        print(f"OpenAPI docs:        {base}/docs", flush=True)
        print(
            f"Database:            {'embedded under ' + str(embedded.pgdata) if embedded else 'external'}",
            flush=True,
        )
        if args.demo:
            from phix.demo import load_demo_in_background

            load_demo_in_background(settings.data_dir, f"{base}{settings.fhir.base_path}")
        uvicorn.run(
            "phix.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


async def _migrate(dsn: str, wait_seconds: float) -> None:
    """Apply the migrations once before the workers start (waiting for the database to answer)."""
    from phix.storage.database import first_connection
    from phix.storage.migrate import apply_migrations

    conn = await first_connection(dsn, wait_seconds)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
