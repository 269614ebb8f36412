"""Residents as stored: the ``mpi_golden`` rows and their golden Patient resources.

Golden Patients are written through the :class:`~phix.storage.repository.Repository` (so they are
versioned, searchable and readable over FHIR like any Patient) by a repository whose listeners do
not include the patient index itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from phix.mpi import golden, store
from phix.mpi.features import Features
from phix.storage.repository import Repository


async def create(conn: asyncpg.Connection, golden_ids: Sequence[str], now: datetime) -> None:
    if golden_ids:
        await conn.execute(
            "INSERT INTO mpi_golden (golden_id, status, created_at, updated_at)"
            " SELECT g, 'active', $2, $2 FROM unnest($1::text[]) AS g ON CONFLICT DO NOTHING",
            list(golden_ids),
            now,
        )


async def set_status(
    conn: asyncpg.Connection, golden_id: str, status: str, merged_into: str | None, now: datetime
) -> None:
    await conn.execute(
        "UPDATE mpi_golden SET status = $2, merged_into = $3, updated_at = $4 WHERE golden_id = $1",
        golden_id,
        status,
        merged_into,
        now,
    )


async def statuses(conn: asyncpg.Connection, golden_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    rows = await conn.fetch(
        "SELECT golden_id, status, merged_into FROM mpi_golden WHERE golden_id = ANY($1::text[])",
        list(golden_ids),
    )
    return {r["golden_id"]: (r["status"], r["merged_into"]) for r in rows}


async def refresh(
    conn: asyncpg.Connection,
    repo: Repository,
    golden_ids: Sequence[str],
    now: datetime,
    known: Mapping[str, Features] | None = None,
) -> None:
    """Rebuild the golden Patients of ``golden_ids`` from their current sources and store the ones
    that changed. A resident left without sources is retired (or points at its survivor)."""
    ids = sorted(set(golden_ids))
    if not ids:
        return
    sources = await store.source_features(conn, ids, known or {})
    status = await statuses(conn, ids)
    rows = await conn.fetch(
        "SELECT res_id, deleted, body FROM resources WHERE res_type = 'Patient' AND res_id = ANY($1::text[])",
        ids,
    )
    stored = {r["res_id"]: None if r["deleted"] else r["body"] for r in rows}
    explained: list[tuple[str, str]] = []
    writes: list[tuple[str, dict[str, Any]]] = []
    for golden_id in ids:
        linked = sources.get(golden_id) or []
        state, merged_into = status.get(golden_id, ("active", None))
        if linked:
            if state != "active":
                await set_status(conn, golden_id, "active", None, now)
            resource, why = golden.build(golden_id, linked)
            explained.append((golden_id, orjson.dumps(why).decode()))
        else:
            if state == "active":
                await set_status(conn, golden_id, "retired", None, now)
            resource = golden.retired(merged_into)
        body = stored.get(golden_id)
        if body is None or not golden.same_content(orjson.loads(body), resource):
            writes.append((golden_id, resource))
    # One batched write (resources, versions, search index) for all the residents that changed.
    await repo.put_many("Patient", writes, validated=True)
    if explained:
        await conn.execute(
            "UPDATE mpi_golden g SET survivorship = t.why::jsonb, updated_at = $3"
            " FROM unnest($1::text[], $2::text[]) AS t(golden_id, why) WHERE g.golden_id = t.golden_id",
            [e[0] for e in explained],
            [e[1] for e in explained],
            now,
        )
