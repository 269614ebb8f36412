"""The routing queue in PostgreSQL: one job per (study, destination), nothing in memory.

* **Claim** – ``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)``: the most
  urgent due ``pending`` job becomes ``delivering``; in the same transaction the worker takes a
  *session* advisory lock on the job id and keeps it while it delivers.
* **Progress** – each delivered instance is a ``dicom_deliveries`` row (destination, SOP UID):
  a retried or re-opened job only sends what the destination does not have yet.
* **Finish** – ``delivered``; or back to ``pending`` with ``next_attempt_at`` pushed out
  exponentially (``retry_base_seconds * 2^(attempts-1)``, capped) and the error kept; or
  ``failed`` once ``max_attempts`` is reached (0 = never give up).
* **Crash** – a ``delivering`` job whose advisory lock nobody holds lost its worker (the session
  ends with the process, even on SIGKILL): :func:`reap` puts it back to ``pending`` at once.
* **Re-opened studies** – new instances of a study re-open its jobs; a job being delivered at
  that moment is flagged ``recheck`` and goes back to ``pending`` when the worker finishes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from phix.dicom.index import StoredInstance
from phix.dicom.routing import PRIORITY_RANK

LOCK_CLASS = 0x64636D31  # "dcm1": the advisory-lock namespace of route jobs
CHANNEL = "dicom_routes"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    destination: str
    rule: str
    deidentify: bool
    priority: str = "routine"


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    study_instance_uid: str
    destination: str
    rule: str
    deidentify: bool
    attempts: int

    @property
    def lock_key(self) -> int:
        return self.id % 2_147_483_647


_UPSERT = """
INSERT INTO dicom_routes AS r (study_instance_uid, destination, rule, deidentify, priority)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (study_instance_uid, destination) DO UPDATE SET
    rule = EXCLUDED.rule,
    deidentify = EXCLUDED.deidentify,
    priority = least(r.priority, EXCLUDED.priority),
    status = CASE WHEN r.status = 'delivering' THEN 'delivering' ELSE 'pending' END,
    recheck = (r.status = 'delivering'),
    attempts = CASE WHEN r.status = 'delivering' THEN r.attempts ELSE 0 END,
    next_attempt_at = now(),
    updated_at = now()
RETURNING id
"""


async def enqueue(conn: asyncpg.Connection, study_uid: str, routes: Sequence[RouteSpec]) -> list[int]:
    """Create or re-open the study's jobs (inside the caller's transaction) and wake the workers."""
    ids = []
    for route in routes:
        rank = PRIORITY_RANK.get(route.priority, 3)
        ids.append(
            await conn.fetchval(_UPSERT, study_uid, route.destination, route.rule, route.deidentify, rank)
        )
    if ids:
        await conn.execute(f"NOTIFY {CHANNEL}")
    return ids


_CLAIM = """
UPDATE dicom_routes SET status = 'delivering', attempts = attempts + 1, recheck = false,
       claimed_by = $1, updated_at = now()
WHERE id = (
    SELECT id FROM dicom_routes
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY priority, next_attempt_at, id
    FOR UPDATE SKIP LOCKED
    LIMIT 1)
RETURNING id, study_instance_uid, destination, rule, deidentify, attempts
"""


async def claim(conn: asyncpg.Connection, worker: str) -> Job | None:
    """Claim the most urgent due job; the caller must :func:`release` it on the same connection."""
    async with conn.transaction():
        row = await conn.fetchrow(_CLAIM, worker)
        if row is None:
            return None
        job = Job(**dict(row))
        await conn.execute("SELECT pg_advisory_lock($1, $2)", LOCK_CLASS, job.lock_key)
    return job


async def release(conn: asyncpg.Connection, job: Job) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, job.lock_key)


async def reap(conn: asyncpg.Connection) -> int:
    """Put back ``delivering`` jobs whose worker is gone (nobody holds their advisory lock)."""
    async with conn.transaction():
        stale = await conn.fetch(
            "SELECT id FROM dicom_routes WHERE status = 'delivering' FOR UPDATE SKIP LOCKED"
        )
        reclaimed = 0
        for row in stale:
            key = row["id"] % 2_147_483_647
            if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", LOCK_CLASS, key):
                await conn.execute(
                    "UPDATE dicom_routes SET status = 'pending', next_attempt_at = now(), updated_at = now(),"
                    " last_error = 'worker lost (gateway stopped during delivery); resumed'"
                    " WHERE id = $1",
                    row["id"],
                )
                reclaimed += 1
    return reclaimed


async def undelivered(conn: asyncpg.Connection, job: Job) -> list[StoredInstance]:
    rows = await conn.fetch(
        "SELECT i.sop_instance_uid, i.sop_class_uid, i.series_instance_uid, i.transfer_syntax_uid, i.path"
        " FROM dicom_instances i WHERE i.study_instance_uid = $1 AND NOT EXISTS ("
        "   SELECT 1 FROM dicom_deliveries d"
        "   WHERE d.destination = $2 AND d.sop_instance_uid = i.sop_instance_uid)"
        " ORDER BY i.series_number NULLS LAST, i.series_instance_uid, i.instance_number NULLS LAST",
        job.study_instance_uid,
        job.destination,
    )
    return [StoredInstance(**dict(r)) for r in rows]


async def record_delivered(conn: asyncpg.Connection, job: Job, sop_uids: Sequence[str]) -> None:
    if not sop_uids:
        return
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO dicom_deliveries (destination, sop_instance_uid, route_id) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            [(job.destination, uid, job.id) for uid in sop_uids],
        )
        await conn.execute(
            "UPDATE dicom_routes SET instances_sent = instances_sent + $2, updated_at = now() WHERE id = $1",
            job.id,
            len(sop_uids),
        )


async def finish_ok(conn: asyncpg.Connection, job: Job) -> str:
    status: str = await conn.fetchval(
        "UPDATE dicom_routes SET"
        " status = CASE WHEN recheck THEN 'pending' ELSE 'delivered' END,"
        " delivered_at = CASE WHEN recheck THEN delivered_at ELSE now() END,"
        " recheck = false, last_error = NULL, next_attempt_at = now(), updated_at = now()"
        " WHERE id = $1 RETURNING status",
        job.id,
    )
    return status


def backoff_seconds(attempts: int, base: float, cap: float, jitter: float = 0.1) -> float:
    delay = min(base * float(2 ** max(attempts - 1, 0)), cap)
    return float(delay * (1 + random.uniform(-jitter, jitter)))


async def finish_failed(
    conn: asyncpg.Connection, job: Job, error: str, *, base: float, cap: float, max_attempts: int
) -> str:
    give_up = max_attempts > 0 and job.attempts >= max_attempts
    status: str = await conn.fetchval(
        "UPDATE dicom_routes SET status = $2, last_error = $3, recheck = false, updated_at = now(),"
        " next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1 RETURNING status",
        job.id,
        "failed" if give_up else "pending",
        error[:2000],
        backoff_seconds(job.attempts, base, cap),
    )
    return status


async def retry(conn: asyncpg.Connection, route_id: int) -> bool:
    """Make a failed or waiting job due now (operator action)."""
    done = await conn.fetchval(
        "UPDATE dicom_routes SET status = 'pending', next_attempt_at = now(), attempts = 0,"
        " updated_at = now()"
        " WHERE id = $1 AND status IN ('pending', 'failed') RETURNING id",
        route_id,
    )
    if done:
        await conn.execute(f"NOTIFY {CHANNEL}")
    return done is not None


_COLUMNS = (
    "id, study_instance_uid, destination, rule, deidentify, priority, status, attempts, next_attempt_at,"
    " last_error, instances_sent, created_at, updated_at, delivered_at"
)


def _json(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
    return out


async def jobs(
    conn: asyncpg.Connection,
    *,
    study: str | None = None,
    destination: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dicom_routes WHERE ($1::text IS NULL OR study_instance_uid = $1)"
        " AND ($2::text IS NULL OR destination = $2) AND ($3::text IS NULL OR status = $3)"
        " ORDER BY id DESC LIMIT $4",
        study,
        destination,
        status,
        limit,
    )
    return [_json(r) for r in rows]


async def summary(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Per destination: jobs by status, the oldest waiting job and the latest error."""
    rows = await conn.fetch(
        "SELECT destination,"
        " count(*) FILTER (WHERE status = 'pending') AS pending,"
        " count(*) FILTER (WHERE status = 'delivering') AS delivering,"
        " count(*) FILTER (WHERE status = 'delivered') AS delivered,"
        " count(*) FILTER (WHERE status = 'failed') AS failed,"
        " min(created_at) FILTER (WHERE status IN ('pending', 'delivering')) AS oldest_waiting,"
        " (array_agg(last_error ORDER BY updated_at DESC) FILTER (WHERE last_error IS NOT NULL))[1]"
        "   AS last_error,"
        " min(next_attempt_at) FILTER (WHERE status = 'pending') AS next_attempt_at"
        " FROM dicom_routes GROUP BY destination ORDER BY destination"
    )
    return [_json(r) for r in rows]
