"""Links between source records and residents: who belongs to whom, the link history (every
change with who, when, why and the score) and the event stream others can follow.

Events are rows of ``mpi_event`` (a durable, ordered log: read them with :func:`events` from a
sequence number) and a PostgreSQL ``NOTIFY mpi_events, '<seq>'`` sent when the transaction
commits, so a follower can ``LISTEN mpi_events`` instead of polling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

CHANNEL = "mpi_events"

# Event actions.
LINK = "link"  # a source record joined a resident (automatically or by a steward)
NEW_RESIDENT = "new-resident"  # a source record became a new resident
RELINK = "relink"  # a source record moved from one resident to another
UNLINK = "unlink"  # a steward detached a record into a resident of its own
MERGE = "merge"
UNMERGE = "unmerge"
DISTINCT = "distinct"  # "not the same person"
DELETE = "delete"  # the source record was deleted
REVIEW_OPEN = "review-open"
REVIEW_RESOLVE = "review-resolve"


@dataclass(slots=True)
class Event:
    actor: str
    action: str
    patient_id: str | None = None
    golden_id: str | None = None
    previous_golden_id: str | None = None
    grade: str | None = None
    score: float | None = None
    manual: bool = False
    reason: str | None = None
    detail: dict[str, Any] | None = field(default=None)


async def record_events(conn: asyncpg.Connection, events: Sequence[Event], at: datetime) -> list[int]:
    """Append events to the log and notify followers (on commit). Returns their sequence numbers."""
    if not events:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO mpi_event (at, actor, action, patient_id, golden_id, previous_golden_id, grade, score,
                               manual, reason, detail)
        SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                 $8::float8[], $9::bool[], $10::text[], $11::jsonb[])
        RETURNING seq
        """,
        at,
        [e.actor for e in events],
        [e.action for e in events],
        [e.patient_id for e in events],
        [e.golden_id for e in events],
        [e.previous_golden_id for e in events],
        [e.grade for e in events],
        [e.score for e in events],
        [e.manual for e in events],
        [e.reason for e in events],
        [None if e.detail is None else orjson.dumps(e.detail).decode() for e in events],
    )
    seqs = [r["seq"] for r in rows]
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(max(seqs)))
    return seqs


def event_json(row: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seq": row["seq"],
        "at": row["at"].isoformat(),
        "actor": row["actor"],
        "action": row["action"],
    }
    for key in ("patient_id", "golden_id", "previous_golden_id", "grade", "score", "reason"):
        if row[key] is not None:
            out[key] = row[key]
    out["manual"] = row["manual"]
    if row["detail"] is not None:
        out["detail"] = orjson.loads(row["detail"])
    return out


async def events(conn: asyncpg.Connection, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """The event log after sequence number ``since`` (exclusive), oldest first."""
    rows = await conn.fetch("SELECT * FROM mpi_event WHERE seq > $1 ORDER BY seq LIMIT $2", since, limit)
    return [event_json(r) for r in rows]


async def history(conn: asyncpg.Connection, patient_id: str, limit: int = 500) -> list[dict[str, Any]]:
    """Link history of a source record or a resident: every event that names it, oldest first."""
    rows = await conn.fetch(
        """
        SELECT * FROM mpi_event
        WHERE patient_id = $1 OR golden_id = $1 OR previous_golden_id = $1
        ORDER BY seq LIMIT $2
        """,
        patient_id,
        limit,
    )
    return [event_json(r) for r in rows]


async def golden_of(conn: asyncpg.Connection, patient_id: str) -> str | None:
    """The resident a Patient id belongs to: itself when it is a golden record."""
    row = await conn.fetchrow(
        """
        SELECT golden_id FROM mpi_golden WHERE golden_id = $1
        UNION ALL
        SELECT golden_id FROM mpi_record WHERE patient_id = $1 AND golden_id IS NOT NULL
        LIMIT 1
        """,
        patient_id,
    )
    return None if row is None else str(row["golden_id"])


async def source_patient_ids(conn: asyncpg.Connection, patient_id: str) -> list[str]:
    """Every source Patient of the resident ``patient_id`` belongs to.

    A golden id gives its linked sources; a source id gives all sources of its resident
    (itself included). An id the index does not know gives ``[patient_id]``.
    """
    golden = await golden_of(conn, patient_id)
    if golden is None:
        return [patient_id]
    rows = await conn.fetch(
        "SELECT patient_id FROM mpi_record WHERE golden_id = $1 ORDER BY patient_id", golden
    )
    found = [r["patient_id"] for r in rows]
    return found if patient_id in found or patient_id == golden else [patient_id, *found]


async def resident_patients(conn: asyncpg.Connection, patient_id: str) -> list[str]:
    """The resident's golden id and all its sources (the ``$everything`` expansion hook)."""
    golden = await golden_of(conn, patient_id)
    sources = await source_patient_ids(conn, patient_id)
    return list(dict.fromkeys([*([golden] if golden else []), *sources]))
