"""History queries at instance, type and system level, newest first, keyset-paged by commit order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from phix.storage.repository import Version


@dataclass(frozen=True)
class HistoryQuery:
    res_type: str | None = None
    res_id: str | None = None
    since: datetime | None = None
    # ``_at``: versions current at some moment of [at_low, at_high)
    at_low: datetime | None = None
    at_high: datetime | None = None
    before_seq: int | None = None  # keyset cursor: only versions older than this
    count: int = 100


@dataclass(frozen=True)
class HistoryPage:
    versions: list[Version]
    next_cursor: int | None
    total: int | None


async def history(conn: asyncpg.Connection, query: HistoryQuery, *, with_total: bool = False) -> HistoryPage:
    where: list[str] = []
    args: list[object] = []

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if query.res_type is not None:
        where.append(f"v.res_type = {arg(query.res_type)}")
    if query.res_id is not None:
        where.append(f"v.res_id = {arg(query.res_id)}")
    if query.since is not None:
        where.append(f"v.last_updated >= {arg(query.since)}")
    if query.at_high is not None:
        # the version existed before the window closed and was not superseded before it opened
        where.append(f"v.last_updated < {arg(query.at_high)}")
        low = arg(query.at_low or query.at_high)
        where.append(
            "NOT EXISTS (SELECT 1 FROM resource_versions n WHERE n.rid = v.rid"
            f" AND n.version = v.version + 1 AND n.last_updated <= {low})"
        )
    filters = " AND ".join(where) if where else "true"
    total = None
    if with_total:
        total = await conn.fetchval(f"SELECT count(*) FROM resource_versions v WHERE {filters}", *args)
    page_filter = filters
    if query.before_seq is not None:
        page_filter += f" AND v.seq < {arg(query.before_seq)}"
    limit = arg(query.count + 1)
    rows = await conn.fetch(
        "SELECT v.seq, v.rid, v.res_type, v.res_id, v.version, v.last_updated, v.deleted, v.body, v.method"
        f" FROM resource_versions v WHERE {page_filter} ORDER BY v.seq DESC LIMIT {limit}",
        *args,
    )
    more = len(rows) > query.count
    rows = rows[: query.count]
    versions = [
        Version(
            r["rid"],
            r["res_type"],
            r["res_id"],
            r["version"],
            r["last_updated"],
            r["deleted"],
            r["body"],
            r["method"],
        )
        for r in rows
    ]
    next_cursor = rows[-1]["seq"] if more and rows else None
    return HistoryPage(versions, next_cursor, total)
