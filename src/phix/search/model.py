"""The FHIR R4 element type model the expression compiler needs (from ``data/elements.json``).

``elements`` maps a type (a data type, a resource type, or a backbone element named by its path such
as ``Observation.component``) to its elements: ``name -> type`` or, for choice elements,
``name[x] -> [types]``. Loaded lazily on first use and cached.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

# A node of an expression's result: (JSON value, FHIR type name).
Node = tuple[Any, str]

# A node type we know nothing about: member access then falls back to plain JSON keys.
UNKNOWN = "*"

# Specialisations of Quantity (FHIRPath ``as Quantity`` also accepts them).
QUANTITY_TYPES = frozenset(
    {"Quantity", "Age", "Distance", "Duration", "Count", "SimpleQuantity", "MoneyQuantity"}
)


def load_data_file(name: str) -> Any:
    return json.loads((resources.files("phix.search") / "data" / name).read_text(encoding="utf-8"))


def choice_suffix(type_name: str) -> str:
    """``dateTime`` -> ``DateTime``: the JSON key suffix of a choice element of that type."""
    return type_name[:1].upper() + type_name[1:]


class ElementModel:
    def __init__(self, data: dict[str, Any]) -> None:
        self._elements: dict[str, dict[str, Any]] = data["elements"]
        self._summary = {k: frozenset(v) for k, v in data["summary"].items()}
        self._required = {k: frozenset(v) for k, v in data["required"].items()}
        self._cache: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}

    def knows(self, type_name: str) -> bool:
        return type_name in self._elements

    def is_resource_type(self, name: str) -> bool:
        return name in self._summary

    def resource_type_names(self) -> frozenset[str]:
        return frozenset(self._summary)

    def children(self, owner: str, name: str) -> tuple[tuple[str, str], ...]:
        """The (JSON key, type) pairs element ``name`` of ``owner`` may appear as."""
        key = (owner, name)
        found = self._cache.get(key)
        if found is not None:
            return found
        result: tuple[tuple[str, str], ...]
        elements = self._elements.get(owner)
        if elements is None:
            # A resource type outside the model, or an unknown node: resources share
            # DomainResource's elements; anything else is walked by plain JSON keys.
            base = self._elements.get("DomainResource", {}) if self.is_resource_type(owner) else {}
            declared = base.get(name)
            result = ((name, declared),) if isinstance(declared, str) else ((name, UNKNOWN),)
        elif name in elements and isinstance(elements[name], str):
            result = ((name, elements[name]),)
        elif f"{name}[x]" in elements:
            result = tuple((name + choice_suffix(t), t) for t in elements[f"{name}[x]"])
        else:
            result = ()
        self._cache[key] = result
        return result

    def summary_elements(self, res_type: str) -> frozenset[str]:
        return self._summary.get(res_type, frozenset())

    def required_elements(self, res_type: str) -> frozenset[str]:
        return self._required.get(res_type, frozenset())


@cache
def element_model() -> ElementModel:
    return ElementModel(load_data_file("elements.json"))
