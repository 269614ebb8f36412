"""The receive journal: durable appends, replay up to a torn write, rotation, retirement, ownership."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from phix.dicom.journal import Journal, JournalBusy


def test_append_read_replay_and_torn_tail(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    assert journal.open() == []
    first = journal.append("a" * 64, [b"meta", b"dataset-1"])
    second = journal.append("b" * 64, [b"dataset-2"])
    assert journal.read(first) == b"metadataset-1" and journal.read(second) == b"dataset-2"
    assert journal.inflight == {"a" * 64, "b" * 64}
    journal.close()
    segment = next((tmp_path / "j").glob("*.wal"))
    with open(segment, "ab") as handle:  # a crash in the middle of a third append
        handle.write(b"PXJ1\x00\x10")

    again = Journal(tmp_path / "j")
    leftover = again.open()
    assert leftover == [1]
    records = list(again.replay(1))
    assert [(r.key[0], again.read(r.location)) for r in records] == [
        ("a", b"metadataset-1"),
        ("b", b"dataset-2"),
    ]
    again.seal_recovered(1, len(records))
    again.retire(1, tmp_path)
    assert sorted(p.name for p in (tmp_path / "j").glob("*.wal")) == ["000000000002.wal"]
    again.close()


def test_corrupt_record_ends_the_replay(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.open()
    journal.append("a" * 64, [b"good"])
    bad = journal.append("b" * 64, [b"will be damaged"])
    journal.append("c" * 64, [b"after"])
    journal.close()
    path = tmp_path / "000000000001.wal"
    data = bytearray(path.read_bytes())
    data[bad.offset] ^= 0xFF
    path.write_bytes(bytes(data))
    assert [r.key[0] for r in Journal(tmp_path).replay(1)] == ["a"]


def test_segments_rotate_and_retire_when_applied(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=1 << 20)
    journal.open()
    blob = b"x" * (300 << 10)
    locations = [journal.append(f"{n:064d}", [blob]) for n in range(8)]
    assert {loc.segment for loc in locations} == {1, 2}
    ready: list[int] = []
    for n, loc in enumerate(locations):
        ready += journal.applied(f"{n:064d}", loc)
    assert ready[-1] == 1 and not journal.inflight
    journal.retire(1, tmp_path)
    assert [p.name for p in tmp_path.glob("*.wal")] == ["000000000002.wal"]
    journal.close()


def test_concurrent_appends(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.open()

    def writer(n: int) -> None:
        for k in range(20):
            journal.append(f"{n:032d}{k:032d}", [bytes([n]) * (1000 + k)])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    journal.close()
    records = list(Journal(tmp_path).replay(1))
    assert len(records) == 80
    reader = Journal(tmp_path)
    for record in records:
        n, k = int(record.key[:32]), int(record.key[32:])
        assert reader.read(record.location) == bytes([n]) * (1000 + k)


def test_one_owner(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.open()
    with pytest.raises(JournalBusy):
        Journal(tmp_path).open()
    journal.close()
    Journal(tmp_path).open()
