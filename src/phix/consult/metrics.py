"""Prometheus metrics of the teleconsultation workflow, read from the database at scrape time.

Figures come from ``consult_tasks`` / ``consult_escalations`` / ``consult_outbox``, so every
worker process answers the same and nothing is lost on restart:

* ``phix_consult_turnaround_seconds`` histogram {priority, site}: completed consults
* ``phix_consult_overdue`` gauge {reader, site}: open consults past their deadline now
  (reader "" = unassigned)
* ``phix_consult_open`` gauge {site, status}: open consults
* ``phix_consult_escalations_total`` counter {action, reader, site}: overdue escalations by the
  reader/site that held the consult
* ``phix_consult_notifications`` gauge {channel, state}: outbox rows
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

BUCKETS = (300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0)

_BUCKET_COLUMNS = ", ".join(f"count(*) FILTER (WHERE t <= {b}) AS b{i}" for i, b in enumerate(BUCKETS))
_TURNAROUND = f"""
SELECT priority, coalesce(site_org, '') AS site, count(*) AS n, coalesce(sum(t), 0) AS total,
       {_BUCKET_COLUMNS}
FROM (SELECT priority, site_org, extract(epoch FROM completed_at - requested_at)::float8 AS t
      FROM consult_tasks WHERE status = 'completed' AND completed_at IS NOT NULL) s
GROUP BY priority, site_org
"""
_OVERDUE = """
SELECT coalesce(owner_role, '') AS reader, coalesce(site_org, '') AS site, count(*) AS n
FROM consult_tasks WHERE status IN ('requested', 'accepted', 'in-progress') AND due_at <= $1
GROUP BY owner_role, site_org
"""
_OPEN = """
SELECT coalesce(site_org, '') AS site, status, count(*) AS n
FROM consult_tasks WHERE status IN ('requested', 'accepted', 'in-progress') GROUP BY site_org, status
"""
_ESCALATIONS = """
SELECT action, coalesce(from_role, '') AS reader, coalesce(from_site, '') AS site, count(*) AS n
FROM consult_escalations GROUP BY action, from_role, from_site
"""
_OUTBOX = "SELECT channel, state, count(*) AS n FROM consult_outbox GROUP BY channel, state"


class ConsultCollector:
    """A collector serving the snapshot taken by :meth:`refresh` (called before each scrape)."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], clock: Callable[[], datetime]) -> None:
        self.pool = pool
        self.clock = clock
        self.snapshot: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        yield from self.snapshot

    async def refresh(self) -> None:
        async with self.pool().acquire() as conn:
            self.snapshot = await snapshot(conn, self.clock())


async def snapshot(conn: asyncpg.Connection, now: datetime) -> list[Metric]:
    turnaround = HistogramMetricFamily(
        "phix_consult_turnaround_seconds",
        "Turnaround of completed teleconsultations (report - request), by priority and reading site",
        labels=["priority", "site"],
    )
    for row in await conn.fetch(_TURNAROUND):
        buckets = [(str(b), float(row[f"b{i}"])) for i, b in enumerate(BUCKETS)]
        buckets.append(("+Inf", float(row["n"])))
        turnaround.add_metric([row["priority"], row["site"]], buckets, float(row["total"]))
    overdue = GaugeMetricFamily(
        "phix_consult_overdue",
        "Open teleconsultations past their deadline, by reader and site (reader '' = unassigned)",
        labels=["reader", "site"],
    )
    for row in await conn.fetch(_OVERDUE, now):
        overdue.add_metric([row["reader"], row["site"]], row["n"])
    open_now = GaugeMetricFamily(
        "phix_consult_open", "Open teleconsultations by site and Task status", labels=["site", "status"]
    )
    for row in await conn.fetch(_OPEN):
        open_now.add_metric([row["site"], row["status"]], row["n"])
    escalations = CounterMetricFamily(
        "phix_consult_escalations",
        "Overdue teleconsultations escalated, by action and the reader and site that held them",
        labels=["action", "reader", "site"],
    )
    for row in await conn.fetch(_ESCALATIONS):
        escalations.add_metric([row["action"], row["reader"], row["site"]], row["n"])
    outbox = GaugeMetricFamily(
        "phix_consult_notifications",
        "Consult notifications by channel and state",
        labels=["channel", "state"],
    )
    for row in await conn.fetch(_OUTBOX):
        outbox.add_metric([row["channel"], row["state"]], row["n"])
    return [turnaround, overdue, open_now, escalations, outbox]
