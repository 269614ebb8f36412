"""Validation cost per resource on the committed synthetic sample (5,000 realistic resources).

    .venv/bin/python bench/validation.py [--rounds 5]

Prints µs per resource (best of ``--rounds``, rounds interleaved) for ``validate()`` as a whole,
for pydantic's ``model_validate`` alone and for the JSON walk alone (JSON types, ele-1, primitive
extensions, required elements, required bindings), per resource type and overall. Run it with
``PYTHONPATH=<an older checkout>/src`` to measure an older version the same way.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from phix.fhir import validation

ROOT = Path(__file__).resolve().parents[1]


def parse(raw: bytes) -> Any:
    try:
        from phix.fhir.fhirjson import loads
    except ImportError:  # an older version
        return orjson.loads(raw)
    return loads(raw)


def walker() -> Callable[[dict[str, Any]], None]:
    try:
        from phix.fhir.walk import walk
    except ImportError:  # an older version: the JSON-type walk in validation.py

        def old(resource: dict[str, Any]) -> None:
            res_type = resource["resourceType"]
            cls = validation.model_class(res_type)
            validation._check_json_kinds(cls, resource, res_type, [])  # type: ignore[attr-defined]

        return old

    def new(resource: dict[str, Any]) -> None:
        res_type = resource["resourceType"]
        walk(validation._model_or_none, res_type, resource, res_type, [])

    return new


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    resources: list[dict[str, Any]] = []
    for path in sorted((ROOT / "synthetic_data" / "bundles").glob("**/*.json")):
        resources.extend(e["resource"] for e in parse(path.read_bytes())["entry"])
    walk = walker()

    def pydantic(resource: dict[str, Any]) -> None:
        validation.model_class(resource["resourceType"]).model_validate(resource)

    def validate(resource: dict[str, Any]) -> None:
        validation.validate(resource["resourceType"], resource)

    steps = {"validate": validate, "pydantic": pydantic, "walk": walk}
    for resource in resources:  # warm every cache
        for step in steps.values():
            step(resource)
    best: dict[tuple[str, str], float] = defaultdict(lambda: float("inf"))
    counts: dict[str, int] = defaultdict(int)
    for resource in resources:
        counts[resource["resourceType"]] += 1
    for _ in range(args.rounds):
        for name, step in steps.items():
            spent: dict[str, float] = defaultdict(float)
            for resource in resources:
                started = time.perf_counter()
                step(resource)
                spent[resource["resourceType"]] += time.perf_counter() - started
            for res_type, seconds in spent.items():
                best[(name, res_type)] = min(best[(name, res_type)], seconds)
            best[(name, "*")] = min(best[(name, "*")], sum(spent.values()))
    counts["*"] = len(resources)
    print(f"{'type':20s} {'n':>5s} {'validate':>9s} {'pydantic':>9s} {'walk':>7s}  (µs/resource)")
    for res_type in sorted(counts, key=lambda t: (t == "*", -counts[t])):
        n = counts[res_type]
        row = [best[(step, res_type)] / n * 1e6 for step in steps]
        print(f"{'all' if res_type == '*' else res_type:20s} {n:5d} " + " ".join(f"{v:9.1f}" for v in row))


if __name__ == "__main__":
    main()
