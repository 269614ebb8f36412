"""The PostgreSQL routing queue: SKIP LOCKED claims, priorities, backoff, lost workers, re-opening."""

from __future__ import annotations

import asyncio

import asyncpg

from phix.dicom import queue as q

STAT = q.RouteSpec("north", "r", False, "stat")
ROUTINE = q.RouteSpec("north", "r", False, "routine")


async def _status(conn: asyncpg.Connection, job_id: int) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow("SELECT * FROM dicom_routes WHERE id = $1", job_id)
    return row


async def test_claims_skip_locked_jobs_and_most_urgent_first(db_url: str) -> None:
    a, b = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        await q.enqueue(a, "1.1", [ROUTINE])
        await q.enqueue(a, "1.2", [STAT])
        first = await q.claim(a, "w1")
        second = await q.claim(b, "w2")
        assert first is not None and first.study_instance_uid == "1.2"  # stat before routine
        assert second is not None and second.study_instance_uid == "1.1"
        assert await q.claim(b, "w2") is None
        assert (await _status(a, first.id))["status"] == "delivering"
        assert (await _status(a, first.id))["claimed_by"] == "w1"
    finally:
        await a.close()
        await b.close()


async def test_backoff_then_give_up(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        (job_id,) = await q.enqueue(conn, "1.1", [ROUTINE])
        job = await q.claim(conn, "w")
        assert job is not None
        status = await q.finish_failed(conn, job, "north: cannot connect", base=30, cap=60, max_attempts=2)
        await q.release(conn, job)
        row = await _status(conn, job_id)
        assert status == "pending" and row["last_error"] == "north: cannot connect"
        assert await conn.fetchval("SELECT next_attempt_at > now() + interval '20 seconds' FROM dicom_routes")
        assert await q.claim(conn, "w") is None  # not due yet
        await conn.execute("UPDATE dicom_routes SET next_attempt_at = now()")
        job = await q.claim(conn, "w")
        assert job is not None and job.attempts == 2
        assert await q.finish_failed(conn, job, "still down", base=30, cap=60, max_attempts=2) == "failed"
        await q.release(conn, job)
        assert await q.retry(conn, job_id)
        assert (await _status(conn, job_id))["status"] == "pending"
    finally:
        await conn.close()


def test_backoff_grows_and_is_capped() -> None:
    delays = [q.backoff_seconds(n, 5, 600, jitter=0) for n in range(1, 10)]
    assert delays[:4] == [5, 10, 20, 40] and delays[-1] == 600


async def test_a_dead_worker_job_is_taken_back_at_once(db_url: str) -> None:
    worker, reaper = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        (job_id,) = await q.enqueue(reaper, "1.1", [ROUTINE])
        assert await q.claim(worker, "w") is not None
        assert await q.reap(reaper) == 0  # the worker is alive: its advisory lock is held
        worker.terminate()  # the process died (SIGKILL): its session and lock are gone

        async def reclaimed() -> int:
            for _ in range(50):
                if await q.reap(reaper):
                    return 1
                await asyncio.sleep(0.05)
            return 0

        assert await reclaimed() == 1
        row = await _status(reaper, job_id)
        assert row["status"] == "pending" and "worker lost" in row["last_error"]
        assert await q.claim(reaper, "w2") is not None
    finally:
        await reaper.close()


async def test_new_instances_while_delivering_reopen_the_job(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        (job_id,) = await q.enqueue(conn, "1.1", [ROUTINE])
        job = await q.claim(conn, "w")
        assert job is not None
        assert await q.enqueue(conn, "1.1", [ROUTINE]) == [job_id]  # the study got more instances
        row = await _status(conn, job_id)
        assert row["status"] == "delivering" and row["recheck"]
        assert await q.finish_ok(conn, job) == "pending"  # goes round again
        await q.release(conn, job)
        job = await q.claim(conn, "w")
        assert job is not None
        assert await q.finish_ok(conn, job) == "delivered"
        summary = await q.summary(conn)
        assert summary[0]["destination"] == "north" and summary[0]["delivered"] == 1
    finally:
        await conn.close()
