"""The receive journal: acknowledged C-STORE instances, appended and fdatasync'ed before success.

Creating a file per instance and making it durable costs a file creation, an fsync, a rename and
a directory fsync -- ~4-6 ms on a busy disk, more than everything else on the receive path. The
journal makes an instance durable with one append and one ``fdatasync`` (~0.5 ms) and leaves the
content-addressed file (``objects/``) to the indexer, off the critical path:

    journal/<12-digit sequence>.wal   records: magic | length | crc32 | key | time | PS3.10 bytes

* ``append`` is thread-safe (several associations); concurrent ``fdatasync`` calls coalesce.
* A segment is sealed at ``segment_bytes``; once every record in it has been applied (file written
  to ``objects/`` and indexed) the file system is synced and the segment deleted (``retire``).
* At start-up every remaining segment is replayed (records that fail their CRC, i.e. a write torn
  by a crash and therefore never acknowledged, end the replay of that segment), then retired.
* One gateway owns a journal directory (``flock`` on ``journal/LOCK``); a second one refuses.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"PXJ1"
_HEADER = struct.Struct("<4sQI64sd")  # magic, payload length, crc32, key (hex), received (epoch)


class JournalBusy(RuntimeError):
    """Another gateway process holds this journal."""


@dataclass(frozen=True, slots=True)
class Location:
    segment: int
    offset: int  # of the payload
    length: int


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    received: float
    location: Location


def _name(sequence: int) -> str:
    return f"{sequence:012d}.wal"


def syncfs(folder: Path) -> None:
    """Flush the file system holding ``folder`` (files written without fsync become durable)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    except (OSError, AttributeError):
        os.sync()
    finally:
        os.close(fd)


class Journal:
    def __init__(self, folder: Path, segment_bytes: int = 64 << 20) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._sequence = 0
        self._size = 0
        self._appended: dict[int, int] = {}
        self._applied: dict[int, int] = {}
        self._sealed: set[int] = set()
        self._readers: dict[int, int] = {}
        self.inflight: set[str] = set()  # keys journaled and not applied yet (duplicate check)

    # -- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> list[int]:
        """Take ownership; return the sequences of segments left by a previous run (to replay)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.folder / "LOCK", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise JournalBusy(f"another gateway is using {self.folder}") from None
        leftover = sorted(int(p.stem) for p in self.folder.glob("*.wal") if p.stem.isdigit())
        self._sequence = (leftover[-1] if leftover else 0) + 1
        self._start_segment()
        return leftover

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _start_segment(self) -> None:
        path = self.folder / _name(self._sequence)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._appended[self._sequence] = 0
        self._applied.setdefault(self._sequence, 0)
        dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the new segment's name is durable before anything is acknowledged
        finally:
            os.close(dir_fd)

    # -- writing -----------------------------------------------------------------------------------

    def append(self, key: str, parts: Sequence[bytes]) -> Location:
        """Append one instance; durable when this returns."""
        payload_length = sum(len(p) for p in parts)
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        header = _HEADER.pack(MAGIC, payload_length, crc, key.encode("ascii"), time.time())
        with self._lock:
            if self._fd is None:
                raise RuntimeError("journal is closed")
            if self._size >= self.segment_bytes:
                os.close(self._fd)
                self._sealed.add(self._sequence)
                self._sequence += 1
                self._start_segment()
            fd, sequence = self._fd, self._sequence
            offset = self._size + _HEADER.size
            os.writev(fd, [header, *parts])
            self._size += _HEADER.size + payload_length
            self._appended[sequence] += 1
            self.inflight.add(key)
        os.fdatasync(fd)
        return Location(sequence, offset, payload_length)

    # -- reading and retiring ----------------------------------------------------------------------

    def read(self, location: Location) -> bytes:
        fd = self._readers.get(location.segment)
        if fd is None:
            fd = os.open(self.folder / _name(location.segment), os.O_RDONLY)
            self._readers[location.segment] = fd
        data = os.pread(fd, location.length, location.offset)
        if len(data) != location.length:
            raise OSError(f"journal segment {location.segment} is shorter than expected")
        return data

    def applied(self, key: str, location: Location) -> list[int]:
        """Count a record as applied; returns segments now ready to retire (sealed, all applied)."""
        with self._lock:
            self.inflight.discard(key)
            self._applied[location.segment] = self._applied.get(location.segment, 0) + 1
            return [s for s in self._sealed if self._applied.get(s, 0) >= self._appended.get(s, 0)]

    def seal_recovered(self, sequence: int, records: int) -> None:
        """Declare a replayed segment (all its ``records`` are applied by the replay)."""
        with self._lock:
            self._sealed.add(sequence)
            self._appended[sequence] = records
            self._applied.setdefault(sequence, 0)

    def retire(self, sequence: int, objects: Path) -> None:
        """Make the files written from this segment durable, then delete it."""
        syncfs(objects)
        with self._lock:
            self._sealed.discard(sequence)
            self._appended.pop(sequence, None)
            self._applied.pop(sequence, None)
            fd = self._readers.pop(sequence, None)
        if fd is not None:
            os.close(fd)
        (self.folder / _name(sequence)).unlink(missing_ok=True)

    def replay(self, sequence: int) -> Iterator[Record]:
        """The valid records of a segment, in order; stops at a torn or corrupt record."""
        path = self.folder / _name(sequence)
        size = path.stat().st_size
        with open(path, "rb") as handle:
            offset = 0
            while offset + _HEADER.size <= size:
                magic, length, crc, key, received = _HEADER.unpack(handle.read(_HEADER.size))
                start = offset + _HEADER.size
                if magic != MAGIC or start + length > size:
                    return
                payload = handle.read(length)
                if zlib.crc32(payload) != crc:
                    return
                yield Record(key.decode("ascii"), received, Location(sequence, start, length))
                offset = start + length
