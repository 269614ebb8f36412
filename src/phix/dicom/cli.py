"""``phix gateway``: the DICOM gateway process (wired into ``phix.cli`` by ``register``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("phix.gateway")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    gateway = sub.add_parser(
        "gateway",
        help="run the DICOM gateway (C-STORE/C-FIND/C-ECHO SCP, indexing, routing to reading sites)",
    )
    gateway.add_argument("--host", help="DICOM bind address (default 127.0.0.1, PHIX_DICOM__HOST)")
    gateway.add_argument("--port", type=int, help="DICOM port (default 11112, PHIX_DICOM__PORT)")
    gateway.add_argument("--ae-title", help="our AE title (default PHIX, PHIX_DICOM__AE_TITLE)")
    gateway.add_argument("--rules", type=Path, help="routing YAML (default dicom/routing.yaml)")
    gateway.add_argument("--data-dir", type=Path, help="data directory (default ./var, PHIX_DATA_DIR)")
    gateway.add_argument(
        "--wait-for",
        metavar="URL",
        help="wait until this URL answers 200 before starting (e.g. the API's /readyz)",
    )
    gateway.add_argument("--check", action="store_true", help="validate the routing file and exit")
    gateway.add_argument(
        "--echo",
        action="store_true",
        help="C-ECHO a running gateway (host/port/AE as configured) as the first monitor AE title; exit 0 if"
        " it answers (container health check)",
    )
    gateway.set_defaults(func=gateway_command)


def echo(host: str, port: int, called: str, calling: str, timeout: float = 10.0) -> bool:
    from pynetdicom import AE

    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context("1.2.840.10008.1.1")
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host
    assoc = ae.associate(target, port, ae_title=called)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status and int(status.get("Status", -1)) == 0)


def _wait_for(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"phix gateway: {url} did not answer 200 within {timeout:.0f} s")
        time.sleep(0.5)


def _postmaster_running(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False


def gateway_command(args: argparse.Namespace) -> int:
    from phix.dicom.config import load_dicom_settings
    from phix.dicom.gateway import run_gateway
    from phix.dicom.integration import rules_path
    from phix.dicom.routing import RoutingConfigError, load_routing
    from phix.observability import configure_logging
    from phix.settings import load_settings
    from phix.storage.embedded import EmbeddedPostgres

    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    settings = load_settings(**overrides)
    dicom_overrides: dict[str, object] = {}
    for name in ("host", "port", "ae_title"):
        if getattr(args, name):
            dicom_overrides[name] = getattr(args, name)
    if args.rules:
        dicom_overrides["rules_file"] = args.rules
    dicom_settings = load_dicom_settings(**dicom_overrides)
    configure_logging(settings.log_level)
    if args.echo:
        monitor = (dicom_settings.monitor_ae_titles or ["PHIX_MONITOR"])[0]
        ok = echo(dicom_settings.host, dicom_settings.port, dicom_settings.ae_title, monitor)
        where = f"{dicom_settings.ae_title}@{dicom_settings.host}:{dicom_settings.port}"
        print(f"C-ECHO {where}: {'ok' if ok else 'FAILED'}")
        return 0 if ok else 1
    try:
        config = load_routing(rules_path(dicom_settings))
    except RoutingConfigError as exc:
        print(f"phix gateway: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(
            f"{dicom_settings.rules_file}: {len(config.institutions)} institutions,"
            f" {len(config.sites)} sites, {len(config.rules)} rules: valid"
        )
        return 0
    if args.wait_for:
        _wait_for(args.wait_for)

    embedded = None
    if not settings.database_url:
        # Share the embedded server `phix serve` started; own (and stop) it only if we started it.
        server = EmbeddedPostgres(Path(settings.data_dir))
        owned = not _postmaster_running(server.pgdata)
        dsn = server.start()
        embedded = server if owned else None
        settings = settings.model_copy(update={"database_url": dsn})

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_gateway(settings, dicom_settings, stop)

    try:
        asyncio.run(main())
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m phix.dicom.cli gateway ...`` (the same command as ``phix gateway``)."""
    parser = argparse.ArgumentParser(prog="phix")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
