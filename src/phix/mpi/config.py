"""Matching configuration: thresholds, Fellegi-Sunter m/u probabilities, blocking and linking.

Defaults live in ``model.json`` next to this module. ``phix mpi estimate`` re-estimates the m/u
probabilities from the data (EM) and stores a new model version in ``mpi_model``; the newest
stored version wins over the packaged file. Weights are ``log2(m / u)`` per comparison level.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, Field, model_validator

# Comparison fields and their agreement levels, strongest first ("missing" always weighs 0).
LEVELS: dict[str, tuple[str, ...]] = {
    "id": ("exact", "typo", "near", "disagree"),
    "name": ("exact", "phonetic", "fuzzy", "disagree"),
    "birth": ("exact", "close", "disagree"),
    "sex": ("agree", "disagree"),
    "phone": ("agree", "close", "disagree"),
    "card": ("agree", "disagree"),
    "other_id": ("exact", "typo", "disagree"),
    "address": ("exact", "locality", "town", "disagree"),
}


class Thresholds(BaseModel):
    certain: float = 26.0  # >= : linked automatically
    probable: float = 16.0  # >= : a review item (probable)
    possible: float = 12.0  # >= : a review item (possible)
    # Thresholds hold at this many records and move by log2(records / reference_records) bits
    # (the prior odds of a match fall as the index grows); 0 keeps them fixed.
    reference_records: int = 50_000
    min_records: int = 50_000  # never below the configured thresholds

    def offset(self, records: int) -> float:
        if not self.reference_records or records <= 0:
            return 0.0  # size unknown: the thresholds as configured
        return math.log2(max(records, self.min_records) / self.reference_records)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.certain > self.probable > self.possible:
            raise ValueError("thresholds must satisfy certain > probable > possible")
        return self


class Level(BaseModel):
    m: float = Field(gt=0, le=1)
    u: float = Field(gt=0, le=1)

    @property
    def weight(self) -> float:
        return math.log2(self.m / self.u)


class NameFrequency(BaseModel):
    """How the name weight adapts to how common the name is (Winkler's frequency adjustment)."""

    pseudo_count: float = 2000.0  # prior records blended into the observed counts
    max_adjust: float = 6.0  # bits added or removed at most
    default_frequency: float = 0.0005  # prior share of one full-name reading


class Blocking(BaseModel):
    # A key shared by more records than this is too common to block on: the linker skips it.
    max_per_key: int = Field(default=200, ge=1)
    max_candidates: int = Field(default=600, ge=1)


class Linking(BaseModel):
    mode: Literal["sync", "async"] = "async"  # sync: linked inside the write transaction
    worker_poll_seconds: float = 0.2
    worker_batch: int = 200


class MatchModel(BaseModel):
    version: int = 0
    thresholds: Thresholds = Field(default_factory=Thresholds)
    fields: dict[str, dict[str, Level]]
    household_bonus: float = 3.0  # weight left to the weaker of phone and address when both agree
    contradiction_margin: float = 10.0  # extra bits needed when a same-ID pair contradicts itself
    name_frequency: NameFrequency = Field(default_factory=NameFrequency)
    blocking: Blocking = Field(default_factory=Blocking)
    linking: Linking = Field(default_factory=Linking)

    @model_validator(mode="after")
    def _complete(self) -> MatchModel:
        for name, levels in LEVELS.items():
            missing = set(levels) - set(self.fields.get(name, {}))
            if missing:
                raise ValueError(f"field {name}: no m/u for level(s) {sorted(missing)}")
        return self

    def weights(self) -> dict[str, dict[str, float]]:
        table = {f: {lvl: p.weight for lvl, p in levels.items()} for f, levels in self.fields.items()}
        for levels in table.values():
            levels["missing"] = 0.0
        return table


@cache
def default_model() -> MatchModel:
    text = resources.files("phix.mpi").joinpath("model.json").read_text("utf-8")
    return MatchModel.model_validate(json.loads(text))


def parse_model(data: dict[str, Any] | str) -> MatchModel:
    return MatchModel.model_validate(json.loads(data) if isinstance(data, str) else data)


async def load_model(conn: asyncpg.Connection) -> MatchModel:
    """The newest stored model version, else the packaged default."""
    row = await conn.fetchrow("SELECT version, params FROM mpi_model ORDER BY version DESC LIMIT 1")
    if row is None:
        return default_model()
    model = parse_model(row["params"])
    return model.model_copy(update={"version": row["version"]})


async def save_model(conn: asyncpg.Connection, model: MatchModel, note: str) -> int:
    version: int = await conn.fetchval(
        "INSERT INTO mpi_model (params, note) VALUES ($1::jsonb, $2) RETURNING version",
        model.model_dump_json(exclude={"version"}),
        note,
    )
    return version
