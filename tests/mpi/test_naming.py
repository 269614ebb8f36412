"""The published NamingSystems: valid FHIR, in step with the code, known to the matcher."""

from __future__ import annotations

import json
from pathlib import Path

from phix.fhir.validation import validate
from phix.identity import systems
from phix.mpi import naming
from phix.mpi.features import OTHER, RESIDENT_ID, identifier_kind

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def test_profiles_are_generated_from_the_code() -> None:
    for name, resource in naming.files().items():
        assert (PROFILES / name).read_text("utf-8") == naming.render(resource), f"regenerate {name}"


def test_naming_systems_are_valid_and_recognised() -> None:
    found = []
    for path in sorted(PROFILES.glob("NamingSystem-*.json")):
        data = json.loads(path.read_text("utf-8"))
        resources = [e["resource"] for e in data["entry"]] if data["resourceType"] == "Bundle" else [data]
        for ns in resources:
            validate("NamingSystem", ns)
            uri = next(u["value"] for u in ns["uniqueId"] if u["type"] == "uri")
            assert identifier_kind(uri)[0] != OTHER, uri
            found.append(uri)
    assert identifier_kind(systems.RESIDENT_ID) == (RESIDENT_ID, None)
    assert {
        systems.RESIDENT_ID,
        systems.CITIZEN_CARD,
        systems.VIRTUAL_CARD,
        systems.mrn_system("ptsdyyy"),
    } <= set(found)
