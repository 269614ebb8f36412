"""Fixtures: small generated data sets (session-scoped, they take a second or two each)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from phix.synth.writer import SynthConfig, generate

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO / "synthetic_data"
# Must match the command in synthetic_data/README.md.
SAMPLE_ARGS = ["synth", "--seed", "42", "--residents", "200", "--no-ndjson", "--no-progress"]


@dataclass
class DataSet:
    root: Path
    manifest: dict[str, Any]

    def bundles(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for path in sorted((self.root / "bundles").rglob("*.json")):
            yield path.relative_to(self.root).as_posix(), orjson.loads(path.read_bytes())

    def ground_truth(self) -> list[dict[str, str]]:
        with (self.root / "ground_truth.csv").open(encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def residents(self) -> dict[str, dict[str, str]]:
        with (self.root / "residents.csv").open(encoding="utf-8") as f:
            return {row["resident_key"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="session")
def rich(tmp_path_factory: pytest.TempPathFactory) -> DataSet:
    """A small population with a lot of imaging (every modality and character set shows up)."""
    out = tmp_path_factory.mktemp("synth-rich")
    manifest = generate(SynthConfig(seed=2, residents=120, out=out, imaging_rate=0.3))
    return DataSet(out, manifest)


@pytest.fixture(scope="session")
def sample() -> DataSet:
    manifest = orjson.loads((SAMPLE_DIR / "manifest.json").read_bytes())
    return DataSet(SAMPLE_DIR, manifest)
