"""Black-box fixtures: ``phix serve`` as a real process (uvicorn on a socket, embedded PostgreSQL).

``serve`` starts servers (and always stops them at teardown); ``shared_server`` is one server for
the whole session, for the tests that only talk to it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _phix_command() -> list[str]:
    script = Path(sys.executable).with_name("phix")
    return [str(script)] if script.exists() else [sys.executable, "-m", "phix.cli"]


def _alive(pid: int) -> bool:
    """True for a running process; a zombie (dead, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


class PhixServer:
    """One ``phix serve --port P --data-dir D`` process in its own process group."""

    def __init__(self, data_dir: Path, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-serve-{self.port}.log"
        self._log_offset = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "pg" / "postmaster.pid"

    def postmaster_pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def database_dsn(self) -> str:
        """A DSN for the embedded server, from its postmaster.pid (socket directory and port)."""
        lines = self.pidfile.read_text().splitlines()
        return f"postgresql://postgres@/postgres?host={lines[4]}&port={lines[3]}"

    def start(self) -> PhixServer:
        assert self.process is None or self.process.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHIX_")}
        env.update({"PHIX_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **self.extra_env})
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*_phix_command(), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group, so it can be killed as a whole
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"phix serve exited with {self.process.returncode}:\n{self.output()[-4000:]}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"phix serve did not become ready:\n{self.output()[-4000:]}")

    def output(self) -> str:
        """What this run of the process wrote to stdout and stderr so far."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", "replace")

    def json_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    lines.append(orjson.loads(line))
        return lines

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the server's process group and the embedded postmaster, as a crash would."""
        assert self.process is not None
        postmaster = self.postmaster_pid()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if postmaster is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGKILL)
        self.process.wait(10)

    def cleanup(self) -> None:
        """Stop whatever is left: the server (SIGTERM, then SIGKILL) and its postmaster."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.terminate(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        postmaster = self.postmaster_pid()
        if postmaster is not None and _alive(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGINT)  # fast shutdown


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A data directory outside pytest's basetemp: as root, pgserver runs PostgreSQL as the user
    ``pgserver``, and every pytest start chmods /tmp/pytest-of-root back to 0700, which would cut
    a running server (or initdb) off its files when another pytest run starts meanwhile."""
    root = Path(tempfile.mkdtemp(prefix="phix-e2e-"))
    try:
        yield root / "data"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with _scratch() as path:
        yield path


@pytest.fixture
def serve(data_dir: Path) -> Iterator[Callable[..., PhixServer]]:
    """Factory: ``serve(data_dir=None, port=None, env=None)`` -> a started server."""
    started: list[PhixServer] = []

    def start(
        data_dir: Path = data_dir, port: int | None = None, env: dict[str, str] | None = None
    ) -> PhixServer:
        server = PhixServer(data_dir, port, env)
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.cleanup()


@pytest.fixture(scope="session")
def shared_server() -> Iterator[PhixServer]:
    with _scratch() as path:
        server = PhixServer(path)
        try:
            yield server.start()
        finally:
            server.cleanup()


@pytest.fixture
def alive() -> Callable[[int], bool]:
    return _alive
