"""FHIR R4 Subscriptions on consult Tasks: a minimal, documented subset.

Served: ``Subscription.channel.type = rest-hook`` with ``criteria`` ``Task?<params>`` where each
parameter is one of :data:`PARAMETERS` (comma = any of, repeated parameters = all of), status
``requested`` or ``active`` and ``end`` not past. Without ``channel.payload`` the notification is an
empty ``POST`` to ``channel.endpoint``; with a payload the Task is ``PUT`` to
``[endpoint]/Task/[id]`` (R4 3.1.6 "rest-hook"). ``channel.header`` entries are sent as headers.
Notifications go through the outbox (retries, backoff). A Task Subscription outside this subset is
refused with 422 so that nobody waits for a notification that will never come.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import orjson

from phix.consult.codes import ref_target
from phix.errors import Category, FhirError
from phix.fhir.dates import parse_instant_range

TOKENS = {"status": "status", "priority": "priority", "intent": "intent"}
CONCEPTS = {"business-status": "businessStatus", "code": "code"}
REFERENCES = {
    "owner": "owner",
    "requester": "requester",
    "based-on": "basedOn",
    "focus": "focus",
    "patient": "for",
    "subject": "for",
}
PARAMETERS = frozenset({"_id", *TOKENS, *CONCEPTS, *REFERENCES})

_ACTIVE = """
SELECT res_id, body FROM resources
WHERE res_type = 'Subscription' AND NOT deleted AND convert_from(body, 'UTF8') LIKE '%"criteria":"Task?%'
"""


def parse_criteria(criteria: str) -> list[tuple[str, list[str]]]:
    """``Task?status=completed&owner=PractitionerRole/x`` -> [(name, [values])]; 422 when unsupported."""
    kind, _, query = criteria.partition("?")
    if kind != "Task":
        raise _invalid(f"criteria '{criteria}' is not a Task query", "Subscription.criteria")
    params = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in PARAMETERS:
            raise _invalid(
                f"criteria parameter '{name}' is not supported for Task subscriptions; "
                f"supported: {', '.join(sorted(PARAMETERS))}",
                "Subscription.criteria",
            )
        params.append((name, [v for v in value.split(",") if v]))
    return params


def check_subscription(subscription: dict[str, Any]) -> None:
    """Refuse (422) a Task Subscription this server would not serve."""
    criteria = subscription.get("criteria")
    if not isinstance(criteria, str) or not criteria.startswith("Task"):
        return
    parse_criteria(criteria)
    channel = subscription.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise _invalid("Task subscriptions support channel.type rest-hook only", "Subscription.channel.type")
    endpoint = channel.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise _invalid("a rest-hook needs an http(s) channel.endpoint", "Subscription.channel.endpoint")


def _invalid(message: str, path: str) -> FhirError:
    return FhirError(Category.INVALID, message, expression=[path], code="not-supported")


def _token(value: str) -> tuple[str | None, str]:
    if "|" in value:
        system, _, code = value.partition("|")
        return system or None, code
    return None, value


def _ref_matches(refs: Any, wanted: str) -> bool:
    items = refs if isinstance(refs, list) else [refs]
    want_type, _, want_id = wanted.rpartition("/")
    for item in items:
        target = ref_target(item)
        if target and target[1] == want_id and (not want_type or target[0] == want_type.split("/")[-1]):
            return True
    return False


def _one(task_id: str, task: dict[str, Any], name: str, value: str) -> bool:
    if name == "_id":
        return task_id == value
    if name in TOKENS:
        return task.get(TOKENS[name]) == _token(value)[1]
    if name in CONCEPTS:
        system, code = _token(value)
        concept = task.get(CONCEPTS[name])
        codings = concept.get("coding") if isinstance(concept, dict) else None
        return any(
            c.get("code") == code and (system is None or c.get("system") == system) for c in codings or []
        )
    return _ref_matches(task.get(REFERENCES[name]), value)


def matches(task_id: str, task: dict[str, Any], params: list[tuple[str, list[str]]]) -> bool:
    return all(any(_one(task_id, task, name, v) for v in values) for name, values in params if values)


def _live(subscription: dict[str, Any], now: datetime) -> bool:
    if subscription.get("status") not in {"requested", "active"}:
        return False
    end = subscription.get("end")
    try:
        return not (isinstance(end, str) and parse_instant_range(end)[1] <= now)
    except FhirError:
        return False


async def matching(
    conn: asyncpg.Connection, task_id: str, task: dict[str, Any], now: datetime
) -> list[tuple[str, dict[str, Any]]]:
    """(Subscription id, Subscription) of every live rest-hook whose criteria the Task meets."""
    found = []
    for row in await conn.fetch(_ACTIVE):
        subscription = orjson.loads(row["body"])
        if not _live(subscription, now) or (subscription.get("channel") or {}).get("type") != "rest-hook":
            continue
        try:
            params = parse_criteria(str(subscription.get("criteria")))
        except FhirError:
            continue
        if matches(task_id, task, params):
            found.append((row["res_id"], subscription))
    return found


def header_lines(channel: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for line in channel.get("header") or []:
        name, sep, value = str(line).partition(":")
        if sep and name.strip():
            headers[name.strip()] = value.strip()
    return headers
