"""FHIR JSON parse/serialise paths (``phix.fhir.fhirjson``) on realistic payloads.

    .venv/bin/python bench/fhir_json.py [--repeat 7]

Prints µs per document (best of ``--repeat`` rounds) for: plain ``orjson.loads``; ``fhirjson.loads``
on compact JSON orjson writes back byte for byte (stored bodies, most clients); on JSON with spaces
(Python's ``json.dumps``, which sends the text through the number scan); on JSON whose decimals
need their digits kept (``98.60``: the exact, standard-library path); the standard library with
``parse_float=Decimal`` on its own; and ``orjson.dumps`` vs ``fhirjson.dumps``.
Payloads: bench/crud.py's Patient and Observation, and the 5,000 resources of synthetic_data/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crud import observation, patient

from phix.fhir import fhirjson

ROOT = Path(__file__).resolve().parents[1]


def sample() -> list[dict[str, Any]]:
    out = []
    for path in sorted((ROOT / "synthetic_data" / "bundles").glob("**/*.json")):
        out.extend(e["resource"] for e in orjson.loads(path.read_bytes())["entry"])
    return out


def with_decimal(resource: dict[str, Any]) -> bytes:
    """The resource with a two-decimal value that a float would shorten (98.60)."""
    out = dict(resource)
    out["valueQuantity"] = {
        "value": orjson.Fragment(b"98.60"),
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
    }
    return orjson.dumps(out)


def best(fn: Callable[[bytes], Any], docs: list[Any], repeat: int) -> float:
    fastest = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for doc in docs:
            fn(doc)
        fastest = min(fastest, (time.perf_counter() - started) / len(docs))
    return fastest * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(1)
    sets = {
        "Patient (crud)": [patient(i, rng) for i in range(500)],
        "Observation (crud)": [observation(i, "p1", rng) for i in range(500)],
        "synthetic sample": sample(),
    }
    stdlib = lambda raw: json.loads(raw, parse_float=Decimal)  # noqa: E731
    columns = ("orjson", "compact", "spaced", "exact", "stdlib")
    print(f"{'payload':20s} {'bytes':>6s} " + " ".join(f"{c:>7s}" for c in columns) + "  (µs/doc)")
    for name, resources in sets.items():
        compact = [orjson.dumps(r) for r in resources]
        spaced = [json.dumps(r, ensure_ascii=False).encode() for r in resources]
        decimal = [with_decimal(r) for r in resources]
        assert all(type(fhirjson.loads(d)["valueQuantity"]["value"]) is Decimal for d in decimal)
        size = sum(map(len, compact)) / len(compact)
        row = [
            best(orjson.loads, compact, args.repeat),
            best(fhirjson.loads, compact, args.repeat),
            best(fhirjson.loads, spaced, args.repeat),
            best(fhirjson.loads, decimal, args.repeat),
            best(stdlib, spaced, args.repeat),
        ]
        print(f"{name:20s} {size:6.0f} " + " ".join(f"{v:7.2f}" for v in row))
    parsed = [fhirjson.loads(with_decimal(r)) for r in sets["synthetic sample"]]
    floats = sets["synthetic sample"]
    print(
        f"dumps, sample: orjson {best(orjson.dumps, floats, args.repeat):.2f}, "
        f"fhirjson {best(fhirjson.dumps, floats, args.repeat):.2f}, "
        f"fhirjson with a Decimal {best(fhirjson.dumps, parsed, args.repeat):.2f} µs/doc"
    )
    exact = sum(not fhirjson._lossless(orjson.dumps(r)) for r in floats)
    print(f"synthetic sample documents needing the exact path: {exact} of {len(floats)}")


if __name__ == "__main__":
    main()
