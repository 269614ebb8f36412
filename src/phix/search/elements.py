"""``_summary`` and ``_elements``: subsets of a resource, marked SUBSETTED as the spec asks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from phix.search.model import element_model

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


def _allowed(names: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Plain element names, and prefixes of choice elements (``deceased[x]`` -> ``deceased``)."""
    plain, choices = set(), []
    for name in names:
        if name.endswith("[x]"):
            choices.append(name[:-3])
        else:
            plain.add(name)
    return frozenset(plain), tuple(choices)


def _keep(key: str, plain: frozenset[str], choices: tuple[str, ...]) -> bool:
    bare = key[1:] if key.startswith("_") else key  # primitive extensions (_birthDate)
    if bare in plain:
        return True
    return any(bare.startswith(c) and bare[len(c) : len(c) + 1].isupper() for c in choices)


def _marked(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    return {**resource, "meta": meta}


def subset(resource: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    plain, choices = _allowed([*names, *_ALWAYS])
    kept = {k: v for k, v in resource.items() if _keep(k, plain, choices)}
    return _marked(kept)


def summary(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    """``_summary=true|text|data`` applied to one resource (``false`` leaves it whole)."""
    res_type = resource.get("resourceType", "")
    model = element_model()
    if mode == "true":
        return subset(resource, model.summary_elements(res_type))
    if mode == "text":
        return subset(resource, ["text", *model.required_elements(res_type)])
    if mode == "data":
        return _marked({k: v for k, v in resource.items() if k != "text"})
    return resource


def elements(resource: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``_elements=a,b``: the listed top-level elements plus the mandatory ones."""
    res_type = resource.get("resourceType", "")
    wanted = [n.split(".", 1)[-1] if n.startswith(res_type + ".") else n for n in names]
    choices = [f"{n}[x]" for n in wanted]  # ``value`` keeps ``valueQuantity``
    return subset(resource, [*wanted, *choices, *element_model().required_elements(res_type)])
