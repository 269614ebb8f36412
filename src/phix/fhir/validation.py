"""Resource validation with ``fhir.resources.R4B``, reported as OperationOutcome issues.

Pydantic checks structure and value formats but is lax about JSON types and does not check
FHIR's invariants, primitive extensions or required bindings; :mod:`phix.fhir.walk` does that in
one pass over the JSON. Both always run, so every problem is reported at once (pydantic skips its
model-level checks, such as required primitives, once a field failed); the issues are merged (one
per element path, the walk's first since it names the FHIR rule) and ordered by path.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from phix.errors import Category, FhirError, Issue
from phix.fhir.resource_types import RESOURCE_TYPES
from phix.fhir.walk import walk


def resource_types() -> frozenset[str]:
    """Every resource type of FHIR R4B (4.3.0)."""
    return RESOURCE_TYPES


@functools.cache
def model_class(res_type: str) -> type[BaseModel]:
    from fhir.resources.R4B import get_fhir_model_class

    if res_type not in resource_types():
        raise FhirError(Category.NOT_FOUND, f"Unknown resource type '{res_type}'", code="not-supported")
    cls: type[BaseModel] = get_fhir_model_class(res_type)
    return cls


def _model_or_none(res_type: str) -> type[BaseModel] | None:
    return model_class(res_type) if res_type in RESOURCE_TYPES else None


def _loc_to_path(res_type: str, loc: tuple[int | str, ...]) -> str:
    path = res_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"__root__", "resource_type", "root"}:  # (no FHIR element is named "root")
            continue
        else:
            path += f".{part}"
    return path


# fhir.resources' check of a required choice (``medication[x]``), reported on the whole resource;
# the walk reports it on the element.
_REQUIRED_CHOICE = "Expect any of field value from this list"


def _pydantic_issues(res_type: str, exc: ValidationError) -> tuple[list[Issue], list[Issue]]:
    """(issues to report, issues the walk reports better: required choices)."""
    issues: list[Issue] = []
    left_to_walk: list[Issue] = []
    for err in exc.errors():
        path = _loc_to_path(res_type, tuple(err["loc"]))
        kind = err["type"]
        if kind == "extra_forbidden":
            issues.append(Issue(f"Unknown element at {path}", (path,), "structure"))
        elif "missing" in kind:
            issues.append(Issue(f"{err['msg']} at {path}", (path,), "required"))
        elif _REQUIRED_CHOICE in err["msg"]:
            left_to_walk.append(Issue(f"{err['msg']} at {path}", (path,), "required"))
        else:
            issues.append(Issue(f"{err['msg']} at {path}", (path,), "value"))
    return issues, left_to_walk


_PART = re.compile(r"([^.\[]+)(?:\[(\d+)\])?")


def _path_key(issue: Issue) -> tuple[tuple[str, int], ...]:
    """``Patient.name[10].given`` sorts after ``Patient.name[2]``, and an element before its items."""
    if not issue.expression:
        return ()
    return tuple((m[1], int(m[2]) if m[2] else -1) for m in _PART.finditer(issue.expression[0]))


def validate(res_type: str, resource: dict[str, Any]) -> None:
    """Raise ``FhirError(INVALID)`` listing every problem with its element path."""
    cls = model_class(res_type)
    found: list[Issue] = []
    left_to_walk: list[Issue] = []
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        found, left_to_walk = _pydantic_issues(res_type, exc)
    except (ValueError, TypeError) as exc:  # validators raising outside pydantic's wrapper
        found.append(Issue(str(exc), (res_type,), "value"))
    walked: list[Issue] = []
    walk(_model_or_none, res_type, resource, res_type, walked)
    if not found and not walked:
        if not left_to_walk:
            return
        found = left_to_walk  # (the walk should have found these; never accept what pydantic refused)
    seen: set[str] = set()
    issues: list[Issue] = []
    for issue in walked + found:  # one issue per element; the walk's names the FHIR rule
        where = issue.expression[0] if issue.expression else issue.diagnostics
        if where not in seen:
            seen.add(where)
            issues.append(issue)
    issues.sort(key=_path_key)
    raise FhirError(Category.INVALID, issues=issues)
