"""Crash safety: SIGKILL the server and its embedded PostgreSQL in the middle of a write load.

Every acknowledged write (201/200) must be readable after a restart with exactly the answered
bytes, and the database must hold no half-written version: for every resource, versions 1..n
exist and the current row is version n.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

WRITERS = 6
KILL_AFTER_ACKS = 150
KILL_AFTER_SECONDS = 6.0


def _load(server: Any, stop: threading.Event, acks: list[tuple[str, int, bytes]], errors: list[str]) -> None:
    lock = threading.Lock()

    def writer(n: int) -> None:
        own: list[str] = []
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                i += 1
                body: dict[str, Any] = {
                    "resourceType": "Patient",
                    "name": [{"text": f"writer {n} write {i}"}],
                }
                try:
                    if own and i % 3:
                        res_id = own[i % len(own)]
                        response = http.put(f"/Patient/{res_id}", json={**body, "id": res_id})
                    elif i % 5 == 0:  # update-as-create with a client id
                        response = http.put(f"/Patient/w{n}-{i}", json={**body, "id": f"w{n}-{i}"})
                    else:
                        response = http.post("/Patient", json=body)
                except httpx.TransportError:
                    return  # the server is gone
                if response.status_code not in (200, 201):
                    errors.append(f"{response.status_code} {response.text[:300]}")
                    continue
                stored = response.json()
                with lock:
                    acks.append((stored["id"], int(stored["meta"]["versionId"]), response.content))
                if response.status_code == 201:
                    own.append(stored["id"])

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + KILL_AFTER_SECONDS
    while len(acks) < KILL_AFTER_ACKS and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL: the server's process group, then the postmaster
    stop.set()
    for thread in threads:
        thread.join(15)
        assert not thread.is_alive()


async def _database_state(dsn: str) -> tuple[list[asyncpg.Record], int, int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        gaps = await conn.fetch(
            "SELECT r.res_id, r.version, count(v.*) AS n, min(v.version) AS lo, max(v.version) AS hi"
            " FROM resources r LEFT JOIN resource_versions v ON v.rid = r.rid GROUP BY r.rid"
            " HAVING count(v.*) <> r.version OR min(v.version) <> 1 OR max(v.version) <> r.version"
        )
        orphans = await conn.fetchval(
            "SELECT count(*) FROM resource_versions v WHERE NOT EXISTS"
            " (SELECT 1 FROM resources r WHERE r.rid = v.rid)"
        )
        mismatched = await conn.fetchval(
            "SELECT count(*) FROM resources r"
            " JOIN resource_versions v ON v.rid = r.rid AND v.version = r.version"
            " WHERE v.body IS DISTINCT FROM r.body OR v.last_updated <> r.last_updated"
        )
        total = await conn.fetchval("SELECT count(*) FROM resource_versions")
        return gaps, orphans, mismatched, total
    finally:
        await conn.close()


def test_sigkill_under_write_load_loses_no_acknowledged_write(
    serve: Callable[..., Any], data_dir: Path, alive: Callable[[int], bool]
) -> None:
    server = serve(data_dir=data_dir)
    postmaster = server.postmaster_pid()
    acks: list[tuple[str, int, bytes]] = []
    errors: list[str] = []
    _load(server, threading.Event(), acks, errors)
    assert errors == []
    assert len(acks) >= 50, f"only {len(acks)} writes were acknowledged before the kill"
    assert server.process.returncode == -9
    assert server.pidfile.exists()  # a crash leaves the pid file behind ...
    assert postmaster is not None and not alive(postmaster)

    restarted = serve(data_dir=data_dir, port=server.port)  # ... which must not block the restart
    assert restarted.postmaster_pid() != postmaster

    latest: dict[str, int] = {}
    with httpx.Client(base_url=restarted.base_url, timeout=10) as http:
        for res_id, version, body in acks:
            response = http.get(f"/Patient/{res_id}/_history/{version}")
            assert response.status_code == 200, (res_id, version, response.text)
            assert response.content == body, (res_id, version)
            latest[res_id] = max(latest.get(res_id, 0), version)
        for res_id, version in latest.items():
            current = http.get(f"/Patient/{res_id}")
            assert current.status_code == 200
            assert int(current.headers["etag"][3:-1]) >= version

    gaps, orphans, mismatched, total = asyncio.run(_database_state(restarted.database_dsn()))
    assert gaps == [], "versions missing or current row out of step"
    assert orphans == 0
    assert mismatched == 0
    assert total >= len(acks)
    # and the restarted server still writes
    with httpx.Client(base_url=restarted.base_url, timeout=10) as http:
        res_id = next(iter(latest))
        after = http.put(f"/Patient/{res_id}", json={"resourceType": "Patient", "id": res_id})
        assert after.status_code == 200
