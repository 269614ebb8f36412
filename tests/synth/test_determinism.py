"""Same seed and size -> the same bytes; the committed sample is what the generator makes now."""

from __future__ import annotations

from pathlib import Path

import pytest

from phix.cli import main
from phix.synth.writer import SynthConfig, generate

from .conftest import SAMPLE_ARGS, SAMPLE_DIR


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "README.md" and not p.name.startswith(".load-state")
    }


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(SynthConfig(seed=11, residents=40, out=a, imaging_rate=0.2))
    generate(SynthConfig(seed=11, residents=40, out=b, imaging_rate=0.2))
    generate(SynthConfig(seed=12, residents=40, out=c, imaging_rate=0.2))
    files_a = _files(a)
    assert any(name.endswith(".dcm") for name in files_a)
    assert any(name.startswith("ndjson/") for name in files_a)
    assert files_a == _files(b)
    assert files_a["ground_truth.csv"] != _files(c)["ground_truth.csv"]


def test_regenerating_into_the_same_directory_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    generate(SynthConfig(seed=3, residents=30, out=out))
    (out / ".load-state-abc.json").write_text("{}")
    generate(SynthConfig(seed=3, residents=10, out=out))
    again = tmp_path / "again"
    generate(SynthConfig(seed=3, residents=10, out=again))
    assert _files(out) == _files(again)


def test_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate(SynthConfig(seed=1, residents=5, out=tmp_path))


def test_committed_sample_is_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sample"
    assert main([*SAMPLE_ARGS, "--out", str(out)]) == 0
    assert "200 residents" in capsys.readouterr().out
    committed, fresh = _files(SAMPLE_DIR), _files(out)
    assert sorted(committed) == sorted(fresh), "file lists differ: regenerate synthetic_data (see its README)"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, f"stale sample files (regenerate synthetic_data, see its README): {stale[:5]}"
    total = sum(len(b) for b in committed.values())
    assert total < 6 * 1024 * 1024
