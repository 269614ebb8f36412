"""A minimal keep-alive HTTP/1.1 load generator for the benchmarks (asyncio streams, no client library).

A generic client library spends more CPU per request than the server under test; on a 2-core
machine that would measure the client. This one writes pre-built request bytes and reads
``Content-Length`` framed responses, nothing else.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    bodies: list[bytes] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000

    def line(self) -> str:
        statuses = dict(sorted(self.statuses.items()))
        return (
            f"{self.name:<22} {len(self.latencies):>7} req  {self.rate:>8.0f}/s  "
            f"p50 {self.pct(0.50):6.2f} ms  p99 {self.pct(0.99):6.2f} ms  statuses {statuses}"
        )

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")


def request_bytes(
    method: str, path: str, host: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: application/fhir+json"]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    body = await reader.readexactly(length) if length else b""
    return status, body


async def run(
    name: str,
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    total: int | None = None,
    duration: float | None = None,
    concurrency: int = 16,
    keep_bodies: bool = False,
) -> Result:
    """Send requests from ``concurrency`` connections until ``total`` are done or ``duration`` passes."""
    result = Result(name)
    counter = 0
    deadline = time.perf_counter() + duration if duration else None

    def next_index() -> int | None:
        nonlocal counter
        if total is not None and counter >= total:
            return None
        if deadline is not None and time.perf_counter() >= deadline:
            return None
        counter += 1
        return counter - 1

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (index := next_index()) is not None:
                payload = make_request(index)
                started = time.perf_counter()
                writer.write(payload)
                status, body = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if keep_bodies:
                    result.bodies.append(body)
        finally:
            writer.close()

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - begin
    return result
