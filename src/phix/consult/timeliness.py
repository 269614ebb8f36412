"""Timeliness of teleconsultations: turnaround per consult, open/overdue counts per reader and site.

Queries over ``consult_tasks`` and ``consult_escalations``; served as
``GET [base]/$consult-timeliness`` (a Parameters resource, see docs/consult.md) and used by the
Prometheus collector. Turnaround = completion - ``ServiceRequest.authoredOn`` (or receipt).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

_OPEN = "('requested', 'accepted', 'in-progress')"

_CONSULTS = """
SELECT task_id, sr_id, requester_org, owner_role, site_org, priority, status, business_status,
       requested_at, received_at, due_at, first_due_at, overdue_at, escalations, completed_at, report_id
FROM consult_tasks
WHERE requested_at >= $1 AND requested_at < $2
  AND ($3::text IS NULL OR site_org = $3) AND ($4::text IS NULL OR owner_role = $4)
  AND ($5::text IS NULL OR priority = $5)
ORDER BY requested_at DESC, task_id
LIMIT $6
"""

# Per (reader, site): completions in the window; open and overdue consults whatever their age.
_GROUPS = f"""
SELECT owner_role AS reader, site_org AS site, GROUPING(owner_role) = 1 AS site_level,
  count(*) FILTER (WHERE status IN {_OPEN}) AS open,
  count(*) FILTER (WHERE status IN {_OPEN} AND due_at <= $3) AS overdue_open,
  count(*) FILTER (WHERE status = 'completed' AND completed_at >= $1 AND completed_at < $2) AS completed,
  count(*) FILTER (WHERE status = 'completed' AND completed_at >= $1 AND completed_at < $2
                   AND completed_at > first_due_at) AS completed_late,
  avg(extract(epoch FROM completed_at - requested_at))
      FILTER (WHERE status = 'completed' AND completed_at >= $1 AND completed_at < $2) AS mean_turnaround,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - requested_at))
      FILTER (WHERE status = 'completed' AND completed_at >= $1 AND completed_at < $2) AS median_turnaround
FROM consult_tasks
WHERE (status IN {_OPEN} OR completed_at >= $1)
  AND ($4::text IS NULL OR site_org = $4) AND ($5::text IS NULL OR owner_role = $5)
  AND ($6::text IS NULL OR priority = $6)
GROUP BY GROUPING SETS ((owner_role, site_org), (site_org))
"""

# Times a consult went overdue while a reader (and site) held it, in the window.
_ESCALATIONS = """
SELECT from_role AS reader, from_site AS site, count(*) AS overdue
FROM consult_escalations
WHERE at >= $1 AND at < $2 AND ($3::text IS NULL OR from_site = $3) AND ($4::text IS NULL OR from_role = $4)
  AND ($5::text IS NULL OR priority = $5)
GROUP BY from_role, from_site
"""


@dataclass(frozen=True)
class Query:
    since: datetime
    until: datetime
    now: datetime
    site: str | None = None
    reader: str | None = None
    priority: str | None = None
    count: int = 100

    @classmethod
    def default(cls, now: datetime) -> Query:
        return cls(now - timedelta(days=30), now + timedelta(microseconds=1), now)


@dataclass
class Tally:
    open: int = 0
    overdue_open: int = 0
    overdue_total: int = 0
    completed: int = 0
    completed_late: int = 0
    mean_turnaround: float | None = None
    median_turnaround: float | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Tally:
        mean, median = row.get("mean_turnaround"), row.get("median_turnaround")
        return cls(
            open=row["open"],
            overdue_open=row["overdue_open"],
            completed=row["completed"],
            completed_late=row["completed_late"],
            mean_turnaround=float(mean) if mean is not None else None,
            median_turnaround=float(median) if median is not None else None,
        )


@dataclass
class Report:
    consults: list[dict[str, Any]]
    readers: dict[tuple[str | None, str | None], Tally]
    sites: dict[str | None, Tally]


def turnaround(row: dict[str, Any]) -> float | None:
    if row.get("completed_at") is None:
        return None
    seconds: float = (row["completed_at"] - row["requested_at"]).total_seconds()
    return seconds


async def timeliness(conn: asyncpg.Connection, q: Query) -> Report:
    consults = [
        dict(r) for r in await conn.fetch(_CONSULTS, q.since, q.until, q.site, q.reader, q.priority, q.count)
    ]
    for row in consults:
        row["turnaround"] = turnaround(row)
        open_now = row["status"] in {"requested", "accepted", "in-progress"}
        row["overdue"] = bool(row["overdue_at"]) or (
            open_now and row["due_at"] is not None and row["due_at"] <= q.now
        )
        row["met_deadline"] = (
            row["completed_at"] <= row["first_due_at"]
            if row["completed_at"] and row["first_due_at"]
            else None
        )
    readers: dict[tuple[str | None, str | None], Tally] = {}
    sites: dict[str | None, Tally] = {}
    groups = await conn.fetch(_GROUPS, q.since, q.until, q.now, q.site, q.reader, q.priority)
    for group in groups:
        data = dict(group)
        if data["site_level"]:
            sites[data["site"]] = Tally.of(data)
        else:
            readers[(data["reader"], data["site"])] = Tally.of(data)
    for row in await conn.fetch(_ESCALATIONS, q.since, q.until, q.site, q.reader, q.priority):
        readers.setdefault((row["reader"], row["site"]), Tally()).overdue_total += row["overdue"]
        sites.setdefault(row["site"], Tally()).overdue_total += row["overdue"]
    return Report(consults, readers, sites)
