"""The durable notification outbox: rows written in the workflow's transaction, delivered later.

Delivery claims due rows with ``FOR UPDATE SKIP LOCKED`` and leases them (``next_attempt_at`` moved
ahead) in a short transaction, sends outside any transaction, then records the result: delivered
on a 2xx, else retried after ``backoff * 2^(attempt-1)`` (capped) until ``max_attempts``, then
``failed``. Several workers never send one row at once; a worker that dies mid-send leaves the
row to be retried when its lease ends (at-least-once delivery: receivers dedupe on
``X-Phix-Delivery``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import httpx
import orjson

from phix.consult.settings import ConsultSettings

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO consult_outbox (event, task_id, channel, target, method, url, headers, body,
                            created_at, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $9)
RETURNING id
"""

_CLAIM = """
WITH due AS (
    SELECT id FROM consult_outbox
    WHERE state = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE consult_outbox o SET attempts = o.attempts + 1, next_attempt_at = $3
FROM due WHERE o.id = due.id
RETURNING o.id, o.event, o.channel, o.method, o.url, o.headers, o.body, o.attempts
"""


async def enqueue(
    conn: asyncpg.Connection,
    *,
    event: str,
    task_id: str | None,
    channel: str,
    target: str | None,
    url: str,
    now: datetime,
    body: bytes | None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> int:
    row_id: int = await conn.fetchval(
        _INSERT,
        event,
        task_id,
        channel,
        target,
        method,
        url,
        orjson.dumps(headers or {}).decode(),
        body,
        now,
    )
    return row_id


@dataclass(frozen=True)
class Delivery:
    id: int
    url: str
    attempt: int
    status: int | None
    error: str | None
    state: str  # delivered | pending | failed


class Deliverer:
    def __init__(self, pool: asyncpg.Pool, settings: ConsultSettings, client: httpx.AsyncClient) -> None:
        self.pool = pool
        self.settings = settings
        self.client = client

    def backoff(self, attempt: int) -> timedelta:
        seconds = self.settings.delivery_backoff_seconds * 2 ** max(attempt - 1, 0)
        return timedelta(seconds=min(seconds, self.settings.delivery_backoff_max_seconds))

    async def deliver_due(self, now: datetime, limit: int = 50) -> list[Delivery]:
        """Send every due notification once; return what happened to each."""
        lease = now + timedelta(seconds=self.settings.delivery_lease_seconds)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, now, limit, lease)
        if not rows:
            return []
        results = await asyncio.gather(*(self._send(row) for row in rows))
        deliveries = []
        async with self.pool.acquire() as conn:
            for row, (status, error) in zip(rows, results, strict=True):
                deliveries.append(await self._record(conn, row, status, error, now))
        return deliveries

    def _headers(self, row: asyncpg.Record) -> dict[str, str]:
        headers: dict[str, str] = dict(orjson.loads(row["headers"]))
        headers["X-Phix-Delivery"] = str(row["id"])
        headers["X-Phix-Event"] = row["event"]
        if row["channel"] == "webhook" and self.settings.webhook_secret and row["body"] is not None:
            digest = hmac.new(self.settings.webhook_secret.encode(), row["body"], hashlib.sha256).hexdigest()
            headers["X-Phix-Signature"] = f"sha256={digest}"
        return headers

    async def _send(self, row: asyncpg.Record) -> tuple[int | None, str | None]:
        try:
            response = await self.client.request(
                row["method"],
                row["url"],
                content=row["body"] or b"",
                headers=self._headers(row),
                timeout=self.settings.delivery_timeout_seconds,
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"

    async def _record(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        status: int | None,
        error: str | None,
        now: datetime,
    ) -> Delivery:
        attempt = row["attempts"]
        if error is None:
            state = "delivered"
            await conn.execute(
                "UPDATE consult_outbox SET state = 'delivered', delivered_at = $2, last_status = $3,"
                " last_error = NULL WHERE id = $1",
                row["id"],
                now,
                status,
            )
        else:
            state = "failed" if attempt >= self.settings.delivery_max_attempts else "pending"
            await conn.execute(
                "UPDATE consult_outbox SET state = $2, next_attempt_at = $3, last_status = $4,"
                " last_error = $5 WHERE id = $1",
                row["id"],
                state,
                now + self.backoff(attempt),
                status,
                error,
            )
            log.warning(
                "consult notification failed",
                extra={"delivery": row["id"], "url": row["url"], "attempt": attempt, "error": error},
            )
        return Delivery(row["id"], row["url"], attempt, status, error, state)
