"""The committed synthetic sample (realistic Putian data) passes every check, parsed as the API
parses request bodies."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from phix.errors import FhirError
from phix.fhir import fhirjson
from phix.fhir.validation import validate

SAMPLE = Path(__file__).resolve().parents[2] / "synthetic_data" / "bundles"


def test_every_resource_of_the_synthetic_sample_validates() -> None:
    files = sorted(SAMPLE.glob("**/*.json"))
    assert files
    failures: list[str] = []
    types: Counter[str] = Counter()
    for path in files:
        bundle = fhirjson.loads(path.read_bytes())
        for i, entry in enumerate(bundle["entry"]):
            resource = entry["resource"]
            types[resource["resourceType"]] += 1
            try:
                validate(resource["resourceType"], resource)
            except FhirError as exc:
                failures.append(f"{path.name} entry {i}: {[i.diagnostics for i in exc.issues]}")
    assert failures == []
    assert sum(types.values()) >= 5000
    assert {"Patient", "Observation", "Encounter", "Condition", "MedicationRequest"} <= set(types)
