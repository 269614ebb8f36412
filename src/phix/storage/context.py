"""Who is asking: a request's context, bound to the repository for that request (Medplum's pattern)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = "-"
    client: str = "anonymous"  # the calling system or user, as authenticated
    base_url: str = "http://127.0.0.1:8080/fhir"
