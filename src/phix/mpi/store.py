"""SQL for the index tables: source records, blocking keys, identifiers, candidates, locks.

Every function takes the caller's connection and runs inside the caller's transaction; bulk
variants use ``unnest`` of column arrays so a batch costs one round trip per table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from phix.mpi.features import Features


@dataclass(slots=True)
class Stored:
    """A source record as stored, with its link."""

    patient_id: str
    rid: int
    golden_id: str | None
    grade: str | None
    manual: bool
    score: float | None
    rule: str | None
    features: Features


def stored_features(raw: Any) -> Features:
    """Features from their stored JSON (``mpi_record.features``)."""
    return Features.from_json(orjson.loads(raw) if isinstance(raw, str | bytes) else raw)


_features = stored_features


def _stored(row: asyncpg.Record) -> Stored:
    return Stored(
        row["patient_id"], row["rid"], row["golden_id"], row["grade"], row["manual"], row["score"],
        row["rule"], _features(row["features"]),
    )  # fmt: skip


_COLUMNS = "patient_id, rid, golden_id, grade, manual, score, rule, features"


async def records(conn: asyncpg.Connection, patient_ids: Sequence[str]) -> dict[str, Stored]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM mpi_record WHERE patient_id = ANY($1::text[])", patient_ids
    )
    return {r["patient_id"]: _stored(r) for r in rows}


async def sources_of(conn: asyncpg.Connection, golden_ids: Sequence[str]) -> dict[str, list[Stored]]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM mpi_record WHERE golden_id = ANY($1::text[]) ORDER BY patient_id", golden_ids
    )
    out: dict[str, list[Stored]] = {g: [] for g in golden_ids}
    for row in rows:
        out[row["golden_id"]].append(_stored(row))
    return out


async def source_features(
    conn: asyncpg.Connection, golden_ids: Sequence[str], known: Mapping[str, Features]
) -> dict[str, list[Features]]:
    """Features of every source of each resident; ``known`` ones are not read or parsed again."""
    rows = await conn.fetch(
        "SELECT golden_id, patient_id,"
        " CASE WHEN patient_id = ANY($2::text[]) THEN NULL ELSE features END AS f"
        " FROM mpi_record WHERE golden_id = ANY($1::text[]) ORDER BY patient_id",
        list(golden_ids),
        list(known),
    )
    out: dict[str, list[Features]] = {g: [] for g in golden_ids}
    for row in rows:
        feats = known[row["patient_id"]] if row["f"] is None else stored_features(row["f"])
        out[row["golden_id"]].append(feats)
    return out


async def try_locks(conn: asyncpg.Connection, keys: Iterable[int]) -> set[int]:
    """Take transaction-level advisory locks without waiting; returns the keys NOT obtained."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT k, pg_try_advisory_xact_lock(k) AS ok FROM unnest($1::bigint[]) AS k ORDER BY k", wanted
    )
    return {r["k"] for r in rows if not r["ok"]}


Link = tuple[str, str | None, str, bool, float | None, str | None]
LinkRow = tuple[str | None, str, bool, float | None, str | None]  # a Link without its patient id


async def save_features(
    conn: asyncpg.Connection,
    items: Sequence[tuple[int, Features]],
    now: datetime,
    replace: Sequence[int] | None = None,
    links: Mapping[str, LinkRow] | None = None,
) -> None:
    """Upsert records' features, blocking keys and identifiers (links are left as they are).
    ``replace``: the rids that may have keys and identifiers stored already (default: all);
    a record new to the index has none to delete. ``links``: write these records' links in the
    same statement (a new record is inserted linked instead of inserted, then updated)."""
    if not items:
        return
    rids = [rid for rid, _ in items]
    block_keys: list[int] = []
    block_rids: list[int] = []
    ident: list[list[Any]] = [[], [], [], [], [], []]
    for rid, f in items:
        for key in f.hashes:
            block_keys.append(key)
            block_rids.append(rid)
        for i in f.identifiers:
            for col, value in zip(ident, (rid, i.system, i.value, i.kind, i.raw, i.valid), strict=True):
                col.append(value)
    linked = [(links or {}).get(f.patient_id) for _, f in items]
    await conn.execute(
        """
        WITH d1 AS (DELETE FROM mpi_block WHERE rid = ANY($15::bigint[])),
             d2 AS (DELETE FROM mpi_identifier WHERE rid = ANY($15::bigint[])),
             i1 AS (INSERT INTO mpi_block (key, rid) SELECT * FROM unnest($2::bigint[], $3::bigint[])),
             i2 AS (INSERT INTO mpi_identifier (rid, system, value, kind, raw, valid)
                    SELECT * FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
                                         $9::bool[]))
        INSERT INTO mpi_record (patient_id, rid, name_key, org, features, flags, updated_at,
                                golden_id, grade, manual, score, rule, linked_at)
        SELECT t.patient_id, t.rid, t.name_key, t.org, t.features,
               ARRAY(SELECT jsonb_array_elements_text(t.features -> 'f')), $14::timestamptz,
               t.golden_id, t.grade, coalesce(t.manual, false), t.score, t.rule,
               CASE WHEN t.golden_id IS NOT NULL THEN $14::timestamptz END
        FROM unnest($10::text[], $1::bigint[], $11::text[], $12::text[], $13::jsonb[],
                    $16::text[], $17::text[], $18::bool[], $19::float8[], $20::text[])
          AS t(patient_id, rid, name_key, org, features, golden_id, grade, manual, score, rule)
        ON CONFLICT (patient_id) DO UPDATE SET
            name_key = EXCLUDED.name_key, org = EXCLUDED.org, features = EXCLUDED.features,
            flags = EXCLUDED.flags, updated_at = EXCLUDED.updated_at,
            golden_id = coalesce(EXCLUDED.golden_id, mpi_record.golden_id),
            grade = CASE WHEN EXCLUDED.golden_id IS NULL THEN mpi_record.grade ELSE EXCLUDED.grade END,
            manual = CASE WHEN EXCLUDED.golden_id IS NULL THEN mpi_record.manual ELSE EXCLUDED.manual END,
            score = CASE WHEN EXCLUDED.golden_id IS NULL THEN mpi_record.score ELSE EXCLUDED.score END,
            rule = CASE WHEN EXCLUDED.golden_id IS NULL THEN mpi_record.rule ELSE EXCLUDED.rule END,
            linked_at = coalesce(EXCLUDED.linked_at, mpi_record.linked_at)
        """,
        rids, block_keys, block_rids, *ident,
        [f.patient_id for _, f in items],
        [f.name.key if f.name and not f.name.temp and f.name.readings else None for _, f in items],
        [f.org for _, f in items],
        [orjson.dumps(f.to_json()).decode() for _, f in items],
        now,
        rids if replace is None else list(replace),
        [row[0] if row else None for row in linked],
        [row[1] if row else None for row in linked],
        [row[2] if row else None for row in linked],
        [row[3] if row else None for row in linked],
        [row[4] if row else None for row in linked],
    )  # fmt: skip


async def delete_records(conn: asyncpg.Connection, rids: Sequence[int]) -> None:
    await conn.execute(
        """
        WITH d1 AS (DELETE FROM mpi_block WHERE rid = ANY($1::bigint[])),
             d2 AS (DELETE FROM mpi_identifier WHERE rid = ANY($1::bigint[]))
        DELETE FROM mpi_record WHERE rid = ANY($1::bigint[])
        """,
        rids,
    )


async def save_links(conn: asyncpg.Connection, links: Sequence[Link], now: datetime) -> None:
    """Set ``(patient_id, golden_id, grade, manual, score, rule)`` links."""
    if not links:
        return
    cols = list(zip(*links, strict=True))
    await conn.execute(
        """
        UPDATE mpi_record r SET golden_id = t.golden_id, grade = t.grade, manual = t.manual,
               score = t.score, rule = t.rule, linked_at = $7
        FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::float8[], $6::text[])
             AS t(patient_id, golden_id, grade, manual, score, rule)
        WHERE r.patient_id = t.patient_id
        """,
        *[list(c) for c in cols],
        now,
    )


async def candidates(
    conn: asyncpg.Connection, keys: Sequence[int], per_key: int, hot: set[int] | None = None
) -> list[tuple[int, str, str, Features]]:
    """``(key, patient_id, golden_id, features)`` of linked records sharing a blocking key.

    At most ``per_key`` records are read per key. With ``hot`` (the frequency cap of the linker),
    a key shared by more than ``per_key`` records is skipped altogether and added to ``hot``;
    keys already in ``hot`` are not read. Without it, such keys are truncated (samples)."""
    wanted = sorted(set(keys) - (hot or set()))
    if not wanted:
        return []
    rows = await conn.fetch(
        """
        SELECT k.key, r.patient_id, r.golden_id, r.features
        FROM unnest($1::bigint[]) AS k(key)
        CROSS JOIN LATERAL (SELECT b.rid FROM mpi_block b WHERE b.key = k.key LIMIT $2) AS b
        JOIN mpi_record r ON r.rid = b.rid
        WHERE r.golden_id IS NOT NULL
        """,
        wanted,
        per_key + 1 if hot is not None else per_key,
    )
    if hot is not None:
        per: dict[int, int] = {}
        for row in rows:
            per[row["key"]] = per.get(row["key"], 0) + 1
        common = {k for k, n in per.items() if n > per_key}
        if common:
            hot |= common
            rows = [r for r in rows if r["key"] not in common]
    parsed: dict[str, Features] = {}
    out = []
    for row in rows:
        pid = row["patient_id"]
        feats = parsed.get(pid)
        if feats is None:
            feats = parsed[pid] = _features(row["features"])
        out.append((row["key"], pid, row["golden_id"], feats))
    return out


async def forbidden_goldens(conn: asyncpg.Connection, patient_ids: Sequence[str]) -> dict[str, set[str]]:
    """Residents each record may not join: those holding a record marked "not the same person"."""
    rows = await conn.fetch(
        """
        SELECT d.me, r.golden_id FROM (
            SELECT a AS me, b AS other FROM mpi_distinct WHERE a = ANY($1::text[])
            UNION ALL SELECT b, a FROM mpi_distinct WHERE b = ANY($1::text[])
        ) d JOIN mpi_record r ON r.patient_id = d.other WHERE r.golden_id IS NOT NULL
        """,
        list(patient_ids),
    )
    out: dict[str, set[str]] = {}
    for row in rows:
        out.setdefault(row["me"], set()).add(row["golden_id"])
    return out


async def source_counts(conn: asyncpg.Connection, golden_ids: Sequence[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT golden_id, count(*) AS n FROM mpi_record"
        " WHERE golden_id = ANY($1::text[]) GROUP BY golden_id",
        list(golden_ids),
    )
    return {r["golden_id"]: r["n"] for r in rows}


class NameCounts:
    """How many residents carry each name reading (for name-frequency weights), cached briefly.

    Residents, not records: a resident registered at five hospitals has five records with one
    name, and counting them would make a rare name look common exactly when its duplicates arrive.
    """

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._counts: dict[str, tuple[float, int]] = {}
        self._total: tuple[float, int] = (0.0, 0)  # records (the index size)
        self._residents = 0

    async def prefetch(self, conn: asyncpg.Connection, keys: Iterable[str]) -> None:
        now = time.monotonic()
        stale = sorted({k for k in keys if k and now - self._counts.get(k, (-1e9, 0))[0] > self.ttl})
        if stale:
            rows = await conn.fetch(
                "SELECT name_key, count(DISTINCT golden_id) AS n FROM mpi_record"
                " WHERE name_key = ANY($1::text[]) AND golden_id IS NOT NULL GROUP BY name_key",
                stale,
            )
            found = {r["name_key"]: r["n"] for r in rows}
            for key in stale:
                self._counts[key] = (now, found.get(key, 0))
            if len(self._counts) > 200_000:
                self._counts.clear()
        if now - self._total[0] > self.ttl:
            self._total = (now, await _estimate_rows(conn, "mpi_record"))
            self._residents = await _estimate_rows(conn, "mpi_golden", "status = 'active'")

    def add(self, key: str, resident: bool = True) -> None:
        """Count a record added in the current batch (``resident``: it founded a new resident)."""
        if resident:
            when, n = self._counts.get(key, (time.monotonic(), 0))
            self._counts[key] = (when, n + 1)
            self._residents += 1
        self._total = (self._total[0], self._total[1] + 1)

    def count(self, key: str) -> int:
        """Residents with this name reading."""
        return self._counts.get(key, (0.0, 0))[1]

    @property
    def total(self) -> int:
        """Records in the index."""
        return self._total[1]

    @property
    def residents(self) -> int:
        return self._residents


async def _estimate_rows(conn: asyncpg.Connection, table: str, where: str = "true") -> int:
    """The planner's row estimate of a big table, an exact count of a small one."""
    estimate = await conn.fetchval(
        "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = $1::regclass", table
    )
    if estimate and estimate > 50_000:
        return int(estimate)
    return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where}") or 0)
