"""Resource validation with ``fhir.resources.R4B``, reported as OperationOutcome issues.

Pydantic is lax about JSON types (it accepts ``"true"`` for a boolean and ``"3"`` for an integer),
and the stored JSON is served byte for byte, so a second, cheap walk checks that every primitive
has the JSON type FHIR prescribes.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from phix.errors import Category, FhirError, Issue
from phix.fhir.resource_types import RESOURCE_TYPES


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


def _loc_to_path(res_type: str, loc: tuple[int | str, ...]) -> str:
    path = res_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"__root__", "resource_type"}:
            continue
        else:
            path += f".{part}"
    return path


def validate(res_type: str, resource: dict[str, Any]) -> None:
    """Raise ``FhirError(INVALID)`` listing every problem with its element path."""
    cls = model_class(res_type)
    issues: list[Issue] = []
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        for err in exc.errors():
            path = _loc_to_path(res_type, tuple(err["loc"]))
            kind = err["type"]
            code = (
                "structure" if kind == "extra_forbidden" else ("required" if "missing" in kind else "value")
            )
            message = "Unknown element" if kind == "extra_forbidden" else err["msg"]
            issues.append(Issue(f"{message} at {path}", (path,), code))
    except (ValueError, TypeError) as exc:  # validators raising outside pydantic's wrapper
        issues.append(Issue(str(exc), (res_type,), "value"))
    if not issues:
        _check_json_kinds(cls, resource, res_type, issues)
    if issues:
        raise FhirError(Category.INVALID, issues=issues)


# -- JSON primitive kinds -------------------------------------------------------------------------

_BOOL, _NUMBER, _STRING, _OBJECT = "boolean", "number", "string", "object"


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, is_list) from Optional[...] / List[...] / Annotated[...]."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else Any
        elif origin in (list, typing.List):  # noqa: UP006
            is_list = True
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, is_list


@functools.cache
def _field_kinds(cls: type[BaseModel]) -> dict[str, tuple[str | type[BaseModel] | None, bool]]:
    kinds: dict[str, tuple[str | type[BaseModel] | None, bool]] = {}
    for name, field in cls.model_fields.items():
        inner, is_list = _unwrap(field.annotation)
        kind: str | type[BaseModel] | None
        if inner is bool:
            kind = _BOOL
        elif isinstance(inner, type) and issubclass(inner, (int, float, decimal.Decimal)):
            kind = _NUMBER
        elif isinstance(inner, type) and issubclass(
            inner, (str, datetime.date, datetime.time, datetime.datetime, bytes)
        ):
            kind = _STRING
        elif isinstance(inner, type) and issubclass(inner, BaseModel):
            kind = inner
        elif hasattr(inner, "get_model_klass") and inner.__name__ not in {"ResourceType", "ElementType"}:
            kind = inner.get_model_klass()  # fhir.resources' abstract "XxxType" markers
        else:
            kind = None  # polymorphic (e.g. contained resources): checked by resourceType below
        kinds[field.alias or name] = (kind, is_list)
    return kinds


def _kind_ok(kind: str, value: Any) -> bool:
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == _NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def _check_json_kinds(cls: type[BaseModel], data: dict[str, Any], path: str, issues: list[Issue]) -> None:
    fields = _field_kinds(cls)
    for key, value in data.items():
        if key == "resourceType" or key.startswith("_"):
            continue
        kind, is_list = fields.get(key, (None, False))
        if kind is None:
            if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
                _check_nested_resource(value, f"{path}.{key}", issues)
            elif isinstance(value, list):
                for j, element in enumerate(value):
                    if isinstance(element, dict) and isinstance(element.get("resourceType"), str):
                        _check_nested_resource(element, f"{path}.{key}[{j}]", issues)
            continue
        items: list[tuple[int | None, Any]] = (
            list(enumerate(value)) if is_list and isinstance(value, list) else [(None, value)]
        )
        for i, item in items:
            item_path = f"{path}.{key}" if i is None else f"{path}.{key}[{i}]"
            if isinstance(kind, str):
                if not _kind_ok(kind, item):
                    issues.append(Issue(f"Expected a JSON {kind} at {item_path}", (item_path,), "value"))
            elif isinstance(item, dict):
                _check_json_kinds(kind, item, item_path, issues)


def _check_nested_resource(data: dict[str, Any], path: str, issues: list[Issue]) -> None:
    try:
        cls = model_class(data["resourceType"])
    except FhirError:
        return
    _check_json_kinds(cls, data, path, issues)
