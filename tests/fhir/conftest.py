"""Helpers for the FHIR API tests: whole-OperationOutcome checks, table counts, minimal resources.

Exposed as fixtures (this folder is not a package, so test modules cannot import each other).
"""

from __future__ import annotations

import datetime
import decimal
import functools
import logging
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from pydantic import BaseModel

from phix.observability import JsonFormatter

STORE_ONLY = ["mpi"]  # domains left out of these tests' apps (see disabled_domains)
OUTCOME_ISSUE_KEYS = {"severity", "code", "diagnostics", "expression"}


def check_outcome(response: httpx.Response, status: int, *expected: Mapping[str, Any]) -> dict[str, Any]:
    """Assert the whole answer: status, media type, and every issue of the OperationOutcome.

    Each expected issue gives ``code`` and optionally ``severity`` (default "error"), ``expression``
    (compared exactly, absent means the issue must carry none) and ``diagnostics`` (a substring or a
    compiled regular expression). The issues must match in number and order.
    """
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/fhir+json"), response.headers
    body: dict[str, Any] = response.json()
    assert set(body) == {"resourceType", "issue"}, body
    assert body["resourceType"] == "OperationOutcome"
    issues = body["issue"]
    assert len(issues) == len(expected), issues
    for got, want in zip(issues, expected, strict=True):
        assert set(got) <= OUTCOME_ISSUE_KEYS, got
        assert got["severity"] == want.get("severity", "error"), got
        assert got["code"] == want["code"], got
        assert got.get("expression") == want.get("expression"), got
        assert isinstance(got["diagnostics"], str) and got["diagnostics"], got
        diagnostics = want.get("diagnostics")
        if isinstance(diagnostics, re.Pattern):
            assert diagnostics.search(got["diagnostics"]), got
        elif diagnostics is not None:
            assert diagnostics in got["diagnostics"], got
    return body


async def table_counts(conn: asyncpg.Connection) -> tuple[int, int]:
    """(rows in resources, rows in resource_versions)."""
    resources = await conn.fetchval("SELECT count(*) FROM resources")
    versions = await conn.fetchval("SELECT count(*) FROM resource_versions")
    return int(resources), int(versions)


# -- minimal valid resources of any R4B type ------------------------------------------------------
# Generated from the fhir.resources models: every required element gets a plain value of its type.
# This is deliberately independent of phix.fhir.validation.

_CHOICE = re.compile(r"Expect any of field value from this list \['(\w+)'")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else Any
        elif origin is list:
            is_list = True
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, is_list


def _value_for(annotation: Any, codes: Any = None) -> Any:
    inner, is_list = _unwrap(annotation)
    value: Any
    if isinstance(codes, list) and codes and codes[0] != "+":
        value = codes[0]  # a code of the element's (required) value set, as fhir.resources lists it
    elif inner is bool:
        value = False
    elif isinstance(inner, type) and issubclass(inner, (int, float, decimal.Decimal)):
        value = 1
    elif isinstance(inner, type) and issubclass(inner, datetime.datetime):
        value = "2024-01-01T00:00:00Z"
    elif isinstance(inner, type) and issubclass(inner, datetime.date):
        value = "2024-01-01"
    elif isinstance(inner, type) and issubclass(inner, datetime.time):
        value = "12:00:00"
    elif isinstance(inner, type) and issubclass(inner, (str, bytes)):
        value = "unknown"
    else:
        if hasattr(inner, "get_model_klass"):
            inner = inner.get_model_klass()
        value = _element_for(inner, top=False) if hasattr(inner, "model_fields") else "http://example.org/x"
    return [value] if is_list else value


# required codes whose value sets fhir.resources does not list (FHIR versions, resource types)
_LARGE_VALUE_SETS = {
    "CapabilityStatement.fhirVersion": ["4.3.0"],
    "ImplementationGuide.fhirVersion": ["4.3.0"],
    "GraphDefinition.start": ["Patient"],
    "SearchParameter.base": ["Patient"],
}


def _element_for(cls: type[BaseModel], top: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if field.is_required() or extra.get("element_required"):
            codes = extra.get("enum_values") or _LARGE_VALUE_SETS.get(f"{cls.__name__}.{name}")
            out[field.alias or name] = _value_for(field.annotation, codes)
    for _ in range(5):  # choice elements ("value[x]" required): add the first alternative
        try:
            cls.model_validate({**out, "resourceType": cls.__name__} if top else out)
            break
        except Exception as exc:
            match = _CHOICE.search(str(exc))
            if not match:
                break
            out[match.group(1)] = _value_for(cls.model_fields[match.group(1)].annotation)
    if not out and not top:  # an element needs a value or children (ele-1)
        for key in ("text", "display", "value", "title", "start", "concept", "note"):
            if key in cls.model_fields:
                out[key] = (
                    "x"
                    if key in ("text", "display", "title")
                    else _value_for(cls.model_fields[key].annotation)
                )
                break
    return out


@functools.cache
def _minimal(res_type: str) -> dict[str, Any]:
    from fhir.resources.R4B import get_fhir_model_class

    return {"resourceType": res_type, **_element_for(get_fhir_model_class(res_type))}


def minimal_resource(res_type: str) -> dict[str, Any]:
    """A small valid resource of ``res_type`` (a fresh copy each call)."""
    import copy

    return copy.deepcopy(_minimal(res_type))


class _JsonLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        # formatted at once, in the request's context, as the production handler does
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def json_log() -> Iterator[list[dict[str, Any]]]:
    """The platform's JSON log lines (logger ``phix``, INFO and up) emitted during the test, parsed."""
    handler = _JsonLines()
    logger = logging.getLogger("phix")
    saved = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(saved)


# -- one database and app per test module, for the many small parametrized cases ------------------
# Tests on these fixtures create what they need under fresh ids and check row-count deltas, so
# they do not depend on each other; starting an app per case would cost ~0.2 s each.


@pytest.fixture(scope="module")
def shared_disabled_domains() -> list[str]:
    return list(STORE_ONLY)


@pytest.fixture
def outcome() -> Callable[..., dict[str, Any]]:
    return check_outcome


@pytest.fixture
def counts() -> Callable[[asyncpg.Connection], Any]:
    return table_counts


@pytest.fixture
def minimal() -> Callable[[str], dict[str, Any]]:
    return minimal_resource


@pytest.fixture
def disabled_domains() -> list[str]:
    """Store semantics without the patient index's golden Patient records (tested in tests/mpi):
    these tests count versions, rows and history entries of the store itself. (The e2e tests run
    the whole platform.)"""
    return list(STORE_ONLY)
