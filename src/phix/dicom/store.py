"""The on-disk instance store: PS3.10 files, content-addressed by SOP Instance UID.

Layout under the store root::

    journal/                  the gateway's receive journal (phix.dicom.journal)
    tmp/                      files being written (never read)
    incoming/<key>.dcm        durable, success answered, not yet indexed (STOW-RS; C-STORE
                              when the journal is off)
    objects/ab/cd/<key>.dcm   the stored instances (``key`` = sha256 of the SOP Instance UID, hex)
    quarantine/<key>.dcm      accepted on the wire but unreadable by the indexer

C-STORE appends to the journal; the indexer then writes ``objects/`` (``materialize``) and the
index. STOW-RS writes ``tmp/`` -> fsync -> rename to ``incoming/`` -> fsync of the directory
before answering, and moves files on to ``objects/`` after their index row has committed. At
start-up the journal is replayed and whatever is left in ``incoming/`` is indexed again
(idempotent): nothing acknowledged is lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path


def key_of(sop_instance_uid: str) -> str:
    return hashlib.sha256(sop_instance_uid.encode("ascii", "replace")).hexdigest()


class InstanceStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.incoming = root / "incoming"
        self.objects = root / "objects"
        self.quarantine = root / "quarantine"
        self._incoming_fd: int | None = None

    def open(self) -> InstanceStore:
        for folder in (self.tmp, self.incoming, self.objects, self.quarantine):
            folder.mkdir(parents=True, exist_ok=True)
        if self._incoming_fd is None:
            self._incoming_fd = os.open(self.incoming, os.O_RDONLY | os.O_DIRECTORY)
        return self

    def close(self) -> None:
        if self._incoming_fd is not None:
            os.close(self._incoming_fd)
            self._incoming_fd = None

    # -- paths ------------------------------------------------------------------------------------

    def object_path(self, key: str) -> Path:
        return self.objects / key[:2] / key[2:4] / f"{key}.dcm"

    def relative_object_path(self, key: str) -> str:
        return f"objects/{key[:2]}/{key[2:4]}/{key}.dcm"

    def incoming_path(self, key: str) -> Path:
        return self.incoming / f"{key}.dcm"

    def exists(self, key: str) -> bool:
        return self.object_path(key).exists() or self.incoming_path(key).exists()

    def locate(self, relative: str, key: str) -> Path | None:
        """The file of an indexed instance (it may still sit in incoming/ for a moment)."""
        for path in (self.root / relative, self.incoming_path(key)):
            if path.exists():
                return path
        return None

    # -- writes -----------------------------------------------------------------------------------

    def write_incoming(self, key: str, parts: Sequence[bytes]) -> bool:
        """Write a PS3.10 file durably into incoming/. False when the instance is already stored."""
        if self.exists(key):
            return False
        tmp = self.tmp / f"{key}.{threading.get_ident()}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.writev(fd, parts)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.rename(tmp, self.incoming_path(key))
        self._sync_incoming()
        return True

    def _sync_incoming(self) -> None:
        fd = self._incoming_fd
        if fd is None:
            fd = os.open(self.incoming, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            os.fsync(fd)

    def materialize(self, key: str, data: bytes) -> None:
        """Write objects/<key> from the journal (no fsync: the journal holds the durable copy
        until it is retired, which syncs the file system first)."""
        target = self.object_path(key)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{key}.{threading.get_ident()}.part"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.rename(tmp, target)

    def set_aside_object(self, key: str) -> Path:
        """Move an unreadable materialized file to quarantine/."""
        target = self.quarantine / f"{key}.dcm"
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.object_path(key), target)
        return target

    def promote(self, key: str) -> None:
        """incoming/ -> objects/ once indexed. A file already in objects/ wins (duplicate)."""
        source = self.incoming_path(key)
        target = self.object_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            source.unlink(missing_ok=True)
            return
        with contextlib.suppress(FileNotFoundError):  # promoted meanwhile by another indexer
            os.rename(source, target)

    def set_aside(self, key: str) -> Path:
        """Move an unreadable incoming file to quarantine/ (kept for inspection, never served)."""
        target = self.quarantine / f"{key}.dcm"
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.incoming_path(key), target)
        return target

    def pending(self) -> list[str]:
        """Keys of files acknowledged but not yet indexed (crash recovery)."""
        return sorted(p.stem for p in self.incoming.glob("*.dcm"))

    def clean_tmp(self) -> int:
        """Remove partial writes left by a crash (never acknowledged)."""
        removed = 0
        for path in self.tmp.glob("*.part"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed
