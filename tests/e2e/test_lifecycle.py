"""``phix serve`` start and stop: SIGTERM is a clean exit that stops the embedded PostgreSQL, the
data survives a restart, and the body limit from the environment holds on a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx


def test_sigterm_exits_cleanly_and_the_next_start_works(
    serve: Callable[..., Any], data_dir: Path, alive: Callable[[int], bool]
) -> None:
    limit = 2048
    first = serve(data_dir=data_dir, env={"PHIX_FHIR__MAX_BODY_BYTES": str(limit)})
    postmaster = first.postmaster_pid()
    assert postmaster is not None and alive(postmaster)
    with httpx.Client(base_url=first.base_url, timeout=10) as http:
        created = http.post("/Patient", json={"resourceType": "Patient", "name": [{"family": "吴"}]})
        assert created.status_code == 201
        big = b'{"resourceType": "Patient", "name": [{"text": "' + b"x" * limit + b'"}]}'
        too_large = http.post("/Patient", content=big, headers={"Content-Type": "application/fhir+json"})
        assert too_large.status_code == 413
        assert too_large.json()["issue"][0]["code"] == "too-costly"

        def chunks() -> Iterator[bytes]:
            yield big[:1000]
            yield big[1000:]

        chunked = http.post("/Patient", content=chunks(), headers={"Content-Type": "application/fhir+json"})
        assert chunked.status_code == 413
        assert "x-request-id" in too_large.headers and "x-request-id" in chunked.headers

    assert first.terminate() == 0
    assert not first.pidfile.exists(), "postmaster.pid left behind"
    assert not alive(postmaster), "the embedded PostgreSQL is still running"
    assert "Traceback" not in first.output()

    second = serve(data_dir=data_dir)
    assert second.postmaster_pid() != postmaster
    with httpx.Client(base_url=second.base_url, timeout=10) as http:
        again = http.get(f"/Patient/{created.json()['id']}")
        assert again.status_code == 200
        assert again.content == created.content
        assert http.get("/Patient/_history").json()["entry"][0]["response"]["etag"] == 'W/"1"'
    assert second.terminate() == 0
    assert not second.pidfile.exists()
