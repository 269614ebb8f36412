"""The SearchParameter registry: the HL7 R4 definitions plus ``profiles/*.json``, compiled once.

Each definition is bound to every resource type of its ``base`` as a :class:`SearchParam` with
its own index key (:func:`param_hash` of type and code, as HAPI does) and a compiled expression
walker (:mod:`phix.search.fhirpath`). Data files are read on the first :func:`load_registry`
call, never at import time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from phix.search import pinyin
from phix.search.fhirpath import UnsupportedExpression, Walker, compile_expression, root_keys
from phix.search.model import ElementModel, element_model, load_data_file
from phix.search.string import DEFAULT, Normalizer

log = logging.getLogger(__name__)

NORMALIZER_EXTENSION = "https://fhir.putian.gov.cn/StructureDefinition/search-normalizer"
NORMALIZERS: dict[str, Normalizer] = {"default": DEFAULT, "pinyin": pinyin.PINYIN}
COMMON_BASES = ("Resource", "DomainResource")
INDEXED_TYPES = frozenset({"string", "token", "date", "number", "quantity", "reference", "uri", "composite"})
# Parameters answered from the ``resources`` table itself, not from index rows.
COLUMN_PARAMS = {"_id": "res_id", "_lastUpdated": "last_updated"}


@cache
def param_hash(res_type: str, code: str) -> int:
    """The signed 64-bit index key of (resource type, parameter code)."""
    digest = hashlib.blake2b(f"{res_type}\x00{code}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class Component:
    definition: str
    type: str
    expression: str
    walker: Walker


@dataclass(frozen=True, eq=False)
class SearchParam:
    """One SearchParameter bound to one resource type."""

    res_type: str
    code: str
    type: str
    url: str
    expression: str | None
    targets: tuple[str, ...] = ()
    walker: Walker | None = None  # None: not extracted (column params, unsupported expressions)
    components: tuple[Component, ...] = ()
    normalizer: Normalizer = DEFAULT
    column: str | None = None  # for _id / _lastUpdated
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    unsupported: str | None = None  # why this parameter cannot be searched
    # JSON keys the expression reads at the top of a resource; absent all -> nothing to extract
    keys: frozenset[str] | None = None
    # At most one index row per resource (a date parameter on one non-repeating element): several
    # conditions on the parameter may then be asked of the same row (see compiler.criteria).
    single: bool = False
    hash: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", param_hash(self.res_type, self.code))

    def sub_hash(self, suffix: str) -> int:
        """Key of a derived index (``:of-type``, ``:identifier``, composite components ``#0``...)."""
        return param_hash(self.res_type, self.code + suffix)


class Registry:
    def __init__(
        self,
        params: dict[str, dict[str, SearchParam]],
        resource_types: Iterable[str],
        compartments: dict[str, dict[str, tuple[str, ...]]],
        model: ElementModel,
    ) -> None:
        self._params = params
        self._types = frozenset(resource_types)
        self._compartments = compartments
        self.model = model
        self._common = MappingProxyType(params.get("Resource", {}))
        self._views: dict[str, Mapping[str, SearchParam]] = {}

    def resource_types(self) -> frozenset[str]:
        return self._types

    def params_for(self, res_type: str) -> Mapping[str, SearchParam]:
        view = self._views.get(res_type)
        if view is None:
            own = self._params.get(res_type)
            if own is None:  # a type outside the supported list: the common parameters only
                own = {code: _rebind(p, res_type) for code, p in self._common.items()}
                self._params[res_type] = own
            view = self._views[res_type] = MappingProxyType(own)
        return view

    def param(self, res_type: str, code: str) -> SearchParam | None:
        return self.params_for(res_type).get(code)

    def compartment_params(self, compartment: str, res_type: str) -> tuple[str, ...]:
        """Parameters of ``res_type`` that place it in a ``compartment`` (e.g. Patient) compartment."""
        return self._compartments.get(compartment, {}).get(res_type, ())

    def compartment_types(self, compartment: str) -> tuple[str, ...]:
        return tuple(t for t in self._compartments.get(compartment, {}) if t in self._types)

    def compartments(self) -> frozenset[str]:
        return frozenset(self._compartments)


def _rebind(param: SearchParam, res_type: str) -> SearchParam:
    return SearchParam(
        res_type=res_type,
        code=param.code,
        type=param.type,
        url=param.url,
        expression=param.expression,
        targets=param.targets,
        walker=param.walker,
        components=param.components,
        normalizer=param.normalizer,
        column=param.column,
        modifiers=param.modifiers,
        comparators=param.comparators,
        unsupported=param.unsupported,
        keys=param.keys,
    )


def _expression_for(expression: str, base: str, all_bases: list[str]) -> str:
    """The parts of a multi-base ``A.x | B.y`` expression that apply to ``base``."""
    if len(all_bases) == 1:
        return expression
    parts = [p.strip() for p in expression.split(" | ")]
    mine = [p for p in parts if p.lstrip("(").split(".", 1)[0].split(" ", 1)[0] == base]
    return " | ".join(mine)


def _normalizer(definition: dict[str, Any]) -> Normalizer:
    for ext in definition.get("extension", []):
        if ext.get("url") == NORMALIZER_EXTENSION:
            name = ext.get("valueCode") or ext.get("valueString")
            if name not in NORMALIZERS:
                raise ValueError(f"SearchParameter {definition.get('url')}: unknown normaliser {name!r}")
            return NORMALIZERS[name]
    return DEFAULT


_SIMPLE_PATH = re.compile(r"^([A-Z][A-Za-z]+)\.([a-z][A-Za-z0-9]*)$")


def single_valued(model: ElementModel, base: str, expression: str) -> bool:
    """Whether a date expression gives at most one index row per resource: a plain
    ``Base.element`` whose element does not repeat (fhir.resources' R4B model; a choice element
    never repeats) and is never a Timing (one row per event). Anything else counts as repeating."""
    found = _SIMPLE_PATH.match(expression)
    if found is None or found.group(1) != base:
        return False
    keys = model.children(base, found.group(2))
    if not keys or any(type_name == "Timing" for _, type_name in keys):
        return False
    from fhir.resources.R4B import get_fhir_model_class

    from phix.fhir.walk import shape

    try:
        fields = shape(get_fhir_model_class(base), base).fields
    except ValueError:  # not an R4B resource type (a profile's own base)
        return False
    return all(key in fields and not fields[key].is_list for key, _ in keys)


class _Builder:
    def __init__(self, model: ElementModel) -> None:
        self.model = model
        self.by_url: dict[str, dict[str, Any]] = {}
        self.params: dict[str, dict[str, SearchParam]] = {}

    def add(self, definition: dict[str, Any], *, strict: bool) -> None:
        for key in ("code", "base", "type"):
            if not definition.get(key):
                raise ValueError(f"SearchParameter {definition.get('url')!r} has no {key}")
        if definition.get("url"):
            self.by_url[definition["url"]] = definition
        bases: list[str] = list(definition["base"])
        for base in bases:
            param = self._bind(definition, base, bases, strict=strict)
            self.params.setdefault(base, {})[param.code] = param

    def _bind(self, d: dict[str, Any], base: str, bases: list[str], *, strict: bool) -> SearchParam:
        code, ptype = d["code"], d["type"]
        expression = _expression_for(d["expression"], base, bases) if d.get("expression") else None
        common: dict[str, Any] = {
            "res_type": base,
            "code": code,
            "type": ptype,
            "url": d.get("url", ""),
            "expression": expression,
            "targets": tuple(d.get("target", ())),
            "modifiers": tuple(d.get("modifier", ())),
            "comparators": tuple(d.get("comparator", ())),
        }
        if code in COLUMN_PARAMS:
            return SearchParam(**common, column=COLUMN_PARAMS[code])
        if ptype not in INDEXED_TYPES or not expression:
            return SearchParam(**common, unsupported=f"parameters of type {ptype} are not supported")
        try:
            walker = compile_expression(self.model, base, expression)
            components = self._components(d, base) if ptype == "composite" else ()
        except (UnsupportedExpression, ValueError) as exc:
            if strict:
                raise ValueError(f"SearchParameter {d.get('url')}: {exc}") from exc
            log.warning("search parameter not indexable", extra={"url": d.get("url"), "reason": str(exc)})
            return SearchParam(**common, unsupported=f"expression not supported: {exc}")
        keys = root_keys(self.model, base, expression)
        single = ptype == "date" and single_valued(self.model, base, expression)
        return SearchParam(
            **common,
            walker=walker,
            components=components,
            normalizer=_normalizer(d),
            keys=keys,
            single=single,
        )

    def _components(self, d: dict[str, Any], base: str) -> tuple[Component, ...]:
        out: list[Component] = []
        for comp in d.get("component", []):
            target = self.by_url.get(comp["definition"])
            if target is None:
                raise ValueError(f"composite component {comp['definition']} is not a known SearchParameter")
            if target["type"] not in INDEXED_TYPES - {"composite"}:
                raise ValueError(f"composite component of type {target['type']}")
            walker = compile_expression(self.model, base, comp["expression"])
            out.append(Component(comp["definition"], target["type"], comp["expression"], walker))
        if len(out) < 2:
            raise ValueError("a composite needs at least two components")
        return tuple(out)


def _profile_definitions(profiles_dir: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(profiles_dir.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        items = (
            [e.get("resource", {}) for e in data.get("entry", [])]
            if data.get("resourceType") == "Bundle"
            else [data]
        )
        found.extend(item for item in items if item.get("resourceType") == "SearchParameter")
    return found


def load_registry(profiles_dir: Path | None = None) -> Registry:
    """The standard R4 parameters plus the SearchParameters found in ``profiles_dir``."""
    model = element_model()
    standard = load_data_file("search-parameters.json")
    builder = _Builder(model)
    composites = [d for d in standard["parameters"] if d["type"] == "composite"]
    for definition in standard["parameters"]:
        builder.by_url[definition["url"]] = definition
    for definition in standard["parameters"]:
        if definition["type"] != "composite":
            builder.add(definition, strict=False)
    for definition in composites:
        builder.add(definition, strict=False)
    types = list(standard["resourceTypes"])
    if profiles_dir is not None and profiles_dir.is_dir():
        for definition in _profile_definitions(profiles_dir):
            builder.add(definition, strict=True)
            types.extend(b for b in definition["base"] if b not in COMMON_BASES and b not in types)
    params = builder.params
    common = {**params.pop("Resource", {}), **params.pop("DomainResource", {})}
    for res_type in types:
        own = params.setdefault(res_type, {})
        for code, param in common.items():
            own.setdefault(code, _rebind(param, res_type))
    params["Resource"] = common
    compartment = load_data_file("compartment-patient.json")
    compartments = {compartment["code"]: {t: tuple(p) for t, p in compartment["resource"].items()}}
    return Registry(params, types, compartments, model)
