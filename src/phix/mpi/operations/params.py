"""Operation inputs (a ``Parameters`` body or the query string) and ``Parameters`` outputs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from phix.errors import Category, FhirError
from phix.fhir.http import json_body
from phix.storage.context import RequestContext


@dataclass
class Inputs:
    """Named inputs of one operation call: values (strings, booleans, ints, dicts) and resources."""

    op: str
    values: dict[str, list[Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check_known(self, known: Iterable[str]) -> None:
        allowed = set(known) | {"_format", "_pretty"}
        unknown = sorted((set(self.values) | set(self.resources)) - allowed)
        if unknown:
            raise FhirError(
                Category.INCORRECT,
                f"{self.op}: unknown parameter(s) {', '.join(unknown)}",
                expression=unknown,
            )

    def all(self, name: str) -> list[Any]:
        return self.values.get(name, [])

    def one(self, name: str, required: bool = False) -> Any:
        found = self.values.get(name, [])
        if len(found) > 1:
            raise FhirError(
                Category.INCORRECT, f"{self.op}: parameter '{name}' given more than once", expression=[name]
            )
        if not found:
            if required:
                raise FhirError(
                    Category.INCORRECT, f"{self.op}: parameter '{name}' is required", expression=[name]
                )
            return None
        return found[0]

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.one(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise FhirError(
                Category.INCORRECT, f"{self.op}: '{name}' must be a non-empty string", expression=[name]
            )
        return value.strip()

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.one(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise FhirError(Category.INCORRECT, f"{self.op}: '{name}' must be true or false", expression=[name])

    def integer(self, name: str, default: int, low: int = 1, high: int = 10_000) -> int:
        value = self.one(name)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise FhirError(
                Category.INCORRECT,
                f"{self.op}: '{name}' must be an integer from {low} to {high}",
                expression=[name],
            )
        return value


_VALUE_KEYS = (
    "valueString", "valueBoolean", "valueInteger", "valueCode", "valueUri", "valueId", "valueDecimal",
    "valuePositiveInt", "valueIdentifier", "valueReference", "valueCoding",
)  # fmt: skip


def _from_parameters(op: str, body: Any) -> Inputs:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError(
            Category.INCORRECT, f"{op}: the body must be a Parameters resource", expression=["resourceType"]
        )
    inputs = Inputs(op)
    for pos, param in enumerate(body.get("parameter") or []):
        where = f"Parameters.parameter[{pos}]"
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise FhirError(Category.INCORRECT, f"{op}: every parameter needs a name", expression=[where])
        name = param["name"]
        if "resource" in param:
            if not isinstance(param["resource"], dict):
                raise FhirError(
                    Category.INCORRECT,
                    f"{op}: '{name}' must hold a resource",
                    expression=[f"{where}.resource"],
                )
            inputs.resources[name] = param["resource"]
            continue
        keys = [k for k in _VALUE_KEYS if k in param]
        if len(keys) != 1:
            raise FhirError(
                Category.INCORRECT, f"{op}: parameter '{name}' needs exactly one value", expression=[where]
            )
        value = param[keys[0]]
        if keys[0] == "valueIdentifier" and isinstance(value, dict):
            value = f"{value.get('system') or ''}|{value.get('value') or ''}"
        elif keys[0] == "valueReference" and isinstance(value, dict):
            value = str(value.get("reference") or "")
        inputs.values.setdefault(name, []).append(value)
    return inputs


async def read_inputs(request: Request, op: str) -> Inputs:
    """Inputs from a POSTed Parameters body (plus the query string) or from a GET query string."""
    inputs = Inputs(op)
    if request.method == "POST":
        inputs = _from_parameters(op, await json_body(request))
    for key, value in request.query_params.multi_items():
        inputs.values.setdefault(key, []).append(value)
    return inputs


def actor(ctx: RequestContext) -> str:
    return ctx.client


def reference_id(value: str | None, name: str, op: str) -> str | None:
    """``Patient/abc`` or ``abc`` -> ``abc``."""
    if value is None:
        return None
    ref = value.strip()
    if ref.startswith("Patient/"):
        ref = ref[len("Patient/") :]
    if not ref or "/" in ref:
        raise FhirError(Category.INCORRECT, f"{op}: '{name}' must reference a Patient", expression=[name])
    return ref


def parameters(values: dict[str, Any]) -> dict[str, Any]:
    """A ``Parameters`` resource from a flat result (Patient ids become references)."""
    out: list[dict[str, Any]] = []
    for name, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if name in ("patient", "resident", "previous", "merged", "from", "moved", "restored", "a", "b"):
                out.append({"name": name, "valueReference": {"reference": f"Patient/{item}"}})
            elif isinstance(item, bool):
                out.append({"name": name, "valueBoolean": item})
            elif isinstance(item, int):
                out.append({"name": name, "valueInteger": item})
            elif isinstance(item, float):
                out.append({"name": name, "valueDecimal": round(item, 3)})
            else:
                out.append({"name": name, "valueString": str(item)})
    return {"resourceType": "Parameters", "parameter": out}
