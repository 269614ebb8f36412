"""``phix load``: push a synthetic data set's transaction bundles to a FHIR server.

The shared bundle goes first; institution bundles follow with ``concurrency`` parallel clients.
A journal (``DIR/.load-state-<hash of url>.json``) lists the bundles the server accepted, so an
interrupted load resumes where it stopped; rejected bundles are retried on the next run.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from phix.synth.bundles import SHARED_BUNDLE

FHIR_JSON = "application/fhir+json"
_RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(slots=True)
class BundleResult:
    name: str
    http_status: int | None
    entries: int
    statuses: Counter[str] = field(default_factory=Counter)  # entry status code -> count
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.http_status == 200 and self.error is None


@dataclass(slots=True)
class Summary:
    bundles: int = 0
    skipped: int = 0
    loaded: int = 0
    failed: list[BundleResult] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False

    def add(self, result: BundleResult) -> None:
        if result.ok:
            self.loaded += 1
            for status, n in result.statuses.items():
                (self.accepted if status.startswith("2") else self.rejected)[status] += n
        else:
            self.failed.append(result)
            self.rejected[str(result.http_status or "no-response")] += result.entries

    def render(self) -> str:
        lines = [
            f"bundles: {self.bundles} total, {self.skipped} already loaded, {self.loaded} loaded now, "
            f"{len(self.failed)} failed" + (" (interrupted)" if self.interrupted else ""),
            "entries accepted: "
            + (", ".join(f"{k}: {v}" for k, v in sorted(self.accepted.items())) or "none"),
            "entries rejected: "
            + (", ".join(f"{k}: {v}" for k, v in sorted(self.rejected.items())) or "none"),
        ]
        for failure in self.failed[:20]:
            lines.append(f"  failed {failure.name}: HTTP {failure.http_status}: {failure.error}")
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more")
        return "\n".join(lines)


def discover(root: Path) -> list[str]:
    """Bundle files relative to ``root``, the shared bundle first."""
    base = root / "bundles"
    shared = base / SHARED_BUNDLE
    if not shared.exists():
        raise FileNotFoundError(f"{shared} not found: is {root} a phix synth output directory?")
    others = sorted(p.relative_to(root).as_posix() for p in base.glob("*/*.json"))
    return [shared.relative_to(root).as_posix(), *others]


def journal_path(root: Path, url: str) -> Path:
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:12]
    return root / f".load-state-{digest}.json"


class Journal:
    def __init__(self, path: Path, url: str, restart: bool = False) -> None:
        self.path = path
        self.url = url
        self.done: dict[str, dict[str, Any]] = {}
        if path.exists() and not restart:
            data = orjson.loads(path.read_bytes())
            if data.get("url") == url:
                self.done = data.get("done", {})

    def record(self, result: BundleResult) -> None:
        self.done[result.name] = {
            "entries": result.entries,
            "statuses": dict(sorted(result.statuses.items())),
        }
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"url": self.url, "done": self.done}, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.path)


def _diagnostics(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200] or response.reason_phrase
    issues = body.get("issue") or [] if isinstance(body, dict) else []
    texts = [str(i.get("diagnostics") or i.get("code")) for i in issues if isinstance(i, dict)]
    return "; ".join(texts)[:300] or response.reason_phrase


def post_bundle(client: httpx.Client, url: str, root: Path, name: str, retries: int = 3) -> BundleResult:
    """POST one transaction bundle; retries transport errors and 429/5xx-busy answers."""
    body = (root / name).read_bytes()
    entries = len(orjson.loads(body).get("entry", []))
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    for attempt in range(retries + 1):
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            if attempt == retries:
                return BundleResult(name, None, entries, error=f"{type(exc).__name__}: {exc}")
        else:
            if response.status_code not in _RETRY_STATUSES or attempt == retries:
                return _result(name, entries, response)
        time.sleep(min(0.2 * 2**attempt, 5.0))
    raise AssertionError("unreachable")  # pragma: no cover


def _result(name: str, entries: int, response: httpx.Response) -> BundleResult:
    if response.status_code != 200:
        return BundleResult(name, response.status_code, entries, error=_diagnostics(response))
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return BundleResult(name, 200, entries, error="response is not JSON")
    if body.get("resourceType") != "Bundle" or body.get("type") != "transaction-response":
        return BundleResult(name, 200, entries, error="response is not a transaction-response Bundle")
    statuses: Counter[str] = Counter()
    for entry in body.get("entry", []):
        status = str((entry.get("response") or {}).get("status", "")).split(" ", 1)[0] or "missing"
        statuses[status] += 1
    if sum(statuses.values()) != entries:
        return BundleResult(
            name, 200, entries, statuses, error=f"{sum(statuses.values())} responses for {entries} entries"
        )
    return BundleResult(name, 200, entries, statuses)


def load(
    root: Path,
    url: str,
    concurrency: int = 4,
    retries: int = 3,
    timeout: float = 300.0,
    restart: bool = False,
    progress: bool = False,
    on_result: Callable[[BundleResult], None] | None = None,
) -> Summary:
    """Load every bundle under ``root`` not yet in the journal; see the module docstring."""
    names = discover(root)
    journal = Journal(journal_path(root, url), url, restart)
    summary = Summary(bundles=len(names))
    todo = [n for n in names if n not in journal.done]
    summary.skipped = len(names) - len(todo)
    bar = _bar(len(names), summary.skipped) if progress else None

    def finish(result: BundleResult) -> None:
        summary.add(result)
        if result.ok:
            journal.record(result)
        if on_result is not None:
            on_result(result)
        if bar is not None:
            bar.update(1)

    try:
        with httpx.Client(timeout=timeout) as client:
            if todo and todo[0] == names[0]:  # the shared bundle must be in before anything refers to it
                finish(post_bundle(client, url, root, todo.pop(0), retries))
                if summary.failed:
                    return summary
            with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
                pending: set[Future[BundleResult]] = set()
                queue = iter(todo)
                try:
                    for name in queue:
                        pending.add(pool.submit(post_bundle, client, url, root, name, retries))
                        if len(pending) >= 2 * concurrency:
                            done, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for future in done:
                                finish(future.result())
                    for future in pending:
                        finish(future.result())
                except KeyboardInterrupt:
                    summary.interrupted = True
                    for future in pending:
                        future.cancel()
                    raise
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if bar is not None:
            bar.close()
    return summary


def _bar(total: int, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="bundle", desc="load")
