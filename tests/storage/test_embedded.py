"""The embedded server's stale ``postmaster.pid`` handling (a real restart is in tests/e2e)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phix.storage.embedded import EmbeddedPostgres


def _pidfile(tmp_path: Path, first_line: str) -> tuple[EmbeddedPostgres, Path]:
    server = EmbeddedPostgres(tmp_path)
    server.pgdata.mkdir(parents=True)
    pidfile = server.pgdata / "postmaster.pid"
    pidfile.write_text(f"{first_line}\n{server.pgdata}\n1700000000\n5432\n{server.pgdata}\n\n  0 0\nready\n")
    return server, pidfile


def test_pidfile_of_a_running_process_is_kept(tmp_path: Path) -> None:
    server, pidfile = _pidfile(tmp_path, str(os.getpid()))
    socket_lock = server.pgdata / ".s.PGSQL.5432.lock"
    socket_lock.write_text(f"{os.getpid()}\n")
    server._clear_stale_pid()
    assert pidfile.exists()
    assert socket_lock.exists()


def test_pidfile_of_a_vanished_process_is_removed(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid is free
    server, pidfile = _pidfile(tmp_path, str(child.pid))
    server._clear_stale_pid()
    assert not pidfile.exists()


@pytest.mark.parametrize("first_line", ["", "not-a-pid", "-1"])
def test_unreadable_pidfile_is_removed(tmp_path: Path, first_line: str) -> None:
    server, pidfile = _pidfile(tmp_path, first_line)
    server._clear_stale_pid()
    assert not pidfile.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombie detection reads Linux /proc")
def test_pidfile_of_a_zombie_is_removed(tmp_path: Path) -> None:
    """A SIGKILLed postmaster is a zombie until init reaps it; it must not block the restart."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        os.kill(child.pid, 0)  # signal 0 still "reaches" a zombie
        server, pidfile = _pidfile(tmp_path, str(child.pid))
        socket_lock = server.pgdata / ".s.PGSQL.5432.lock"
        socket_lock.write_text(f"{child.pid}\n{server.pgdata}\n1700000000\n5432\n")
        other_lock = server.pgdata / ".s.PGSQL.5433.lock"
        other_lock.write_text(f"{child.pid}\n")
        server._clear_stale_pid()
        assert not pidfile.exists()
        assert not socket_lock.exists()  # PostgreSQL would refuse to start beside it
        assert other_lock.exists()  # not this server's port: left alone
    finally:
        child.wait()


def test_no_pidfile_is_fine(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    server._clear_stale_pid()
    assert not (server.pgdata / "postmaster.pid").exists()
    server.stop()  # stopping a server that never started is a no-op
