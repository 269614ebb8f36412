"""Re-estimating the Fellegi-Sunter parameters from the index's own data.

As Splink does: the u-probabilities (how often two *different* people agree by chance) come from
random pairs of records, which are almost all non-matches; the m-probabilities (how often records
of the *same* person agree) come from expectation-maximisation over blocked candidate pairs with u
held fixed. A level never seen keeps a small smoothed probability. ``missing`` comparisons carry
no information and are left out of the likelihood.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from phix.mpi import blocking, store
from phix.mpi.config import LEVELS, Level, MatchModel
from phix.mpi.features import Features
from phix.mpi.scoring import compare

Vector = dict[str, str]
Table = dict[str, dict[str, float]]


@dataclass
class Estimate:
    model: MatchModel
    u: Table
    m: Table
    match_share: float  # estimated share of matches among blocked pairs
    iterations: int
    blocked_pairs: int
    random_pairs: int
    log: list[str] = field(default_factory=list)


def _smoothed(counts: Counter[str], levels: Sequence[str]) -> dict[str, float]:
    total = sum(counts[lvl] for lvl in levels)
    return {lvl: (counts[lvl] + 0.5) / (total + 0.5 * len(levels)) for lvl in levels}


def estimate_u(vectors: Sequence[Vector]) -> Table:
    """u per field and level from comparison vectors of random (non-matching) pairs."""
    out: Table = {}
    for name, levels in LEVELS.items():
        counts = Counter(v[name] for v in vectors if v[name] != "missing")
        out[name] = _smoothed(counts, levels)
    return out


def em(
    vectors: Sequence[Vector], m: Table, u: Table, share: float, iterations: int = 50, tol: float = 1e-7
) -> tuple[Table, float, int]:
    """m-probabilities and the match share by EM over blocked pairs, u fixed."""
    m = {f: dict(levels) for f, levels in m.items()}
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 - the count is returned
        posteriors = []
        for v in vectors:
            log_m = math.log(share)
            log_u = math.log(1 - share)
            for name, lvl in v.items():
                if lvl != "missing":
                    log_m += math.log(m[name][lvl])
                    log_u += math.log(u[name][lvl])
            diff = max(min(log_u - log_m, 700.0), -700.0)
            posteriors.append(1.0 / (1.0 + math.exp(diff)))
        new_share = min(max(sum(posteriors) / max(len(posteriors), 1), 1e-6), 1 - 1e-6)
        new_m: Table = {}
        for name, levels in LEVELS.items():
            weighted: Counter[str] = Counter()
            for v, g in zip(vectors, posteriors, strict=True):
                if v[name] != "missing":
                    weighted[v[name]] += g  # type: ignore[assignment]
            total = sum(weighted.values())
            new_m[name] = {lvl: (weighted[lvl] + 0.01) / (total + 0.01 * len(levels)) for lvl in levels}
        change = max(abs(new_m[f][lvl] - m[f][lvl]) for f in LEVELS for lvl in LEVELS[f])
        m, share = new_m, new_share
        if change < tol:
            break
    return m, share, done


def updated(model: MatchModel, m: Table, u: Table) -> MatchModel:
    fields = {
        name: {
            lvl: Level(m=min(max(m[name][lvl], 1e-9), 1.0), u=min(max(u[name][lvl], 1e-9), 1.0))
            for lvl in levels
        }
        for name, levels in LEVELS.items()
    }
    # A name nobody else carries yet weighs what name agreement weighs on average: the prior
    # share of the name-frequency adjustment follows the chance agreement (u) of exact names.
    names = model.name_frequency.model_copy(update={"default_frequency": fields["name"]["exact"].u})
    return model.model_copy(update={"fields": fields, "name_frequency": names, "version": 0})


async def _features(conn: asyncpg.Connection, sql: str, *args: object) -> list[tuple[str | None, Features]]:
    rows = await conn.fetch(sql, *args)
    return [(r["golden_id"], store.stored_features(r["features"])) for r in rows]


@dataclass
class Sample:
    blocked: list[Vector]
    randoms: list[Vector]
    records: int  # records in the index
    candidates_per_record: float  # mean blocked candidates of a record


async def sample(conn: asyncpg.Connection, records: int, random_pairs: int, seed: int = 1) -> Sample:
    """Blocked and random pair vectors from the stored records. Random pairs are drawn among
    records of *different* residents, so known links do not inflate the u-probabilities."""
    total = int(await conn.fetchval("SELECT count(*) FROM mpi_record") or 0)
    if total < 2:
        return Sample([], [], total, 0.0)
    share = min(1.0, records / total)
    await conn.execute("SELECT setseed($1)", ((seed * 7919) % 1000) / 1000.0)  # the same sample again
    picked = await _features(
        conn, "SELECT golden_id, features FROM mpi_record WHERE random() < $1 LIMIT $2", share * 1.2, records
    )
    blocked: list[Vector] = []
    seen: set[tuple[str, str]] = set()
    reached = 0
    for _, f in picked:
        rows = await store.candidates(conn, blocking.hashes(f, broad=False), 50)
        reached += len({pid for _, pid, _, _ in rows if pid != f.patient_id})
        for _, pid, _, other in rows:
            pair = (min(pid, f.patient_id), max(pid, f.patient_id))
            if pid != f.patient_id and pair not in seen:
                seen.add(pair)
                blocked.append(compare(f, other))
    pool = await _features(
        conn,
        "SELECT golden_id, features FROM mpi_record WHERE random() < $1",
        min(1.0, 2.0 * max(random_pairs, 1000) / total),
    )
    rng = random.Random(seed)
    vectors: list[Vector] = []
    for _ in range(min(random_pairs, len(pool) * (len(pool) - 1) // 2)):
        (ga, a), (gb, b) = rng.sample(pool, 2)
        if ga is None or ga != gb:
            vectors.append(compare(a, b))
    return Sample(blocked, vectors, total, reached / max(len(picked), 1))


async def estimate(
    conn: asyncpg.Connection,
    model: MatchModel,
    records: int = 5000,
    random_pairs: int = 50_000,
    iterations: int = 50,
    calibrate: bool = False,
    certainty: float = 0.999,
) -> Estimate:
    """A new model: u from random pairs, m by EM over blocked pairs (starting from ``model``).

    ``calibrate`` also sets the thresholds from the data: the prior odds that two records match,
    ``lambda = share x candidates per record / (records - 1)``, put the certain threshold where
    the posterior reaches ``certainty`` (probable and possible keep their distance below it); the
    thresholds then rise from this index size on and never fall."""
    found = await sample(conn, records, random_pairs)
    blocked, randoms = found.blocked, found.randoms
    if len(blocked) < 50 or len(randoms) < 50:
        raise ValueError(
            f"too little data to estimate from ({len(blocked)} blocked, {len(randoms)} random pairs)"
        )
    u = estimate_u(randoms)
    m0 = {f: {lvl: p.m for lvl, p in levels.items()} for f, levels in model.fields.items()}
    m, share, done = em(blocked, m0, u, 0.3, iterations)
    result = Estimate(updated(model, m, u), u, m, share, done, len(blocked), len(randoms))
    if calibrate:
        prior = min(max(share * found.candidates_per_record / max(found.records - 1, 1), 1e-12), 0.5)
        certain = math.log2((1 - prior) / prior) + math.log2(certainty / (1 - certainty))
        t = model.thresholds
        thresholds = t.model_copy(
            update={
                "certain": certain, "probable": certain - (t.certain - t.probable),
                "possible": certain - (t.certain - t.possible),
                "reference_records": found.records, "min_records": found.records,
            }
        )  # fmt: skip
        result.model = result.model.model_copy(update={"thresholds": thresholds})
        result.log.append(
            f"prior match odds lambda {prior:.3g} (share {share:.3g} x {found.candidates_per_record:.1f}"
            f" candidates / {found.records} records): certain {t.certain:.1f} -> {certain:.1f} bits"
        )
    for name, levels in LEVELS.items():
        for lvl in levels:
            old = model.fields[name][lvl]
            new = result.model.fields[name][lvl]
            result.log.append(
                f"{name:8} {lvl:9} m {old.m:.4g} -> {new.m:.4g}  u {old.u:.4g} -> {new.u:.4g}"
                f"  weight {old.weight:+.2f} -> {new.weight:+.2f}"
            )
    return result
