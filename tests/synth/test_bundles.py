"""Every resource validates with fhir.resources (R4B); every reference resolves."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from phix.identity import systems

from .conftest import DataSet

ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _references(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(_references(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_references(item))
    return found


def test_every_resource_validates(sample: DataSet) -> None:
    counts: Counter[str] = Counter()
    for _, bundle in sample.bundles():
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            resource = entry["resource"]
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            counts[resource["resourceType"]] += 1
    assert dict(counts) == sample.manifest["counts"]["resources"]
    expected = (
        "Patient Encounter Condition Observation MedicationRequest Immunization AllergyIntolerance Procedure "
        "DiagnosticReport ImagingStudy Organization Location Practitioner PractitionerRole "
        "OrganizationAffiliation Endpoint"
    )
    for kind in expected.split():
        assert counts[kind] > 0, kind


def test_bundle_conventions_and_references(sample: DataSet) -> None:
    bundles = dict(sample.bundles())
    shared = bundles.pop("bundles/shared.json")
    shared_keys = {e["request"]["url"] for e in shared["entry"]}
    for entry in shared["entry"]:
        for ref in _references(entry["resource"]):
            assert ref in shared_keys, ref
    for name, bundle in bundles.items():
        full_urls = [e["fullUrl"] for e in bundle["entry"]]
        assert len(set(full_urls)) == len(full_urls), name
        assert all(UUID.match(u) for u in full_urls)
        put_keys = set()
        patients = {}
        for entry in bundle["entry"]:
            request, resource = entry["request"], entry["resource"]
            assert request["method"] == "PUT"
            if resource["resourceType"] == "Patient":
                assert "id" not in resource
                mrn = next(i for i in resource["identifier"] if i["type"]["coding"][0]["code"] == "MR")
                assert mrn["system"] == systems.mrn_system(name.split("/")[1])
                assert request["url"] == f"Patient?identifier={mrn['system']}|{mrn['value']}"
                patients[entry["fullUrl"]] = request["url"]
            else:
                assert ID.match(resource["id"])
                assert request["url"] == f"{resource['resourceType']}/{resource['id']}"
                put_keys.add(request["url"])
        assert len(patients) <= 200
        for entry in bundle["entry"]:
            for ref in _references(entry["resource"]):
                if ref.startswith("urn:uuid:"):
                    assert ref in patients, (name, ref)
                else:
                    assert ref in put_keys or ref in shared_keys, (name, ref)


@pytest.mark.parametrize("kind", ["Encounter", "Observation", "ImagingStudy"])
def test_clinical_resources_point_at_their_patient_entry(sample: DataSet, kind: str) -> None:
    for _, bundle in sample.bundles():
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == kind:
                assert resource["subject"]["reference"].startswith("urn:uuid:")
