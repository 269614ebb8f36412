"""FHIR transaction bundles, assembled from pre-serialised entries (bytes) so that memory stays
bounded and the output is byte-identical for the same seed.

Conventions (relied on by ``phix load`` and the FHIR server):

* every entry has a ``urn:uuid:`` fullUrl;
* an institution's Patient is a conditional update ``PUT Patient?identifier=<mrn-system>|<mrn>``
  without ``id``; clinical resources refer to it by that entry's ``urn:uuid:`` fullUrl;
* every other resource is ``PUT <Type>/<id>`` with a deterministic id, and refers to other
  resources as ``<Type>/<id>`` (in the same bundle, or in the ``shared`` bundle loaded first).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from phix.synth.ids import fhir_id, uuid_for

SHARED_BUNDLE = "shared.json"


def put_entry(resource_type: str, resource_id: str, resource_json: bytes) -> bytes:
    full_url = uuid_for("fullUrl", resource_type, resource_id)
    return (
        b'{"fullUrl":"urn:uuid:'
        + full_url.encode()
        + b'","resource":'
        + resource_json
        + b',"request":{"method":"PUT","url":"'
        + f"{resource_type}/{resource_id}".encode()
        + b'"}}'
    )


def conditional_patient_entry(patient_uuid: str, mrn_system: str, mrn: str, resource_json: bytes) -> bytes:
    url = orjson.dumps(f"Patient?identifier={mrn_system}|{mrn}")
    return (
        b'{"fullUrl":"urn:uuid:'
        + patient_uuid.encode()
        + b'","resource":'
        + resource_json
        + b',"request":{"method":"PUT","url":'
        + url
        + b"}}"
    )


def bundle_bytes(bundle_id: str, entries: Iterable[bytes]) -> bytes:
    return (
        b'{"resourceType":"Bundle","id":"'
        + bundle_id.encode()
        + b'","type":"transaction","entry":['
        + b",".join(entries)
        + b"]}\n"
    )


class InstitutionBundles:
    """Collects one institution's patient groups and writes a bundle every ``max_patients``
    patients (or ``max_entries`` entries)."""

    def __init__(self, root: Path, seed: int, code: str, max_patients: int, max_entries: int) -> None:
        self.root = root
        self.seed = seed
        self.code = code
        self.max_patients = max_patients
        self.max_entries = max_entries
        self.entries: list[bytes] = []
        self.patients = 0
        self.written: list[str] = []

    @property
    def current_name(self) -> str:
        return f"{self.code}/{self.code}-{len(self.written) + 1:05d}.json"

    def add(self, group: list[bytes]) -> str:
        """Add one patient's entries; returns the bundle file (relative) they will be in."""
        if self.patients and (
            self.patients >= self.max_patients or len(self.entries) + len(group) > self.max_entries
        ):
            self.flush()
        self.entries.extend(group)
        self.patients += 1
        return self.current_name

    def flush(self) -> None:
        if not self.entries:
            return
        name = self.current_name
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bundle_bytes(fhir_id(self.seed, "Bundle", name), self.entries))
        self.written.append(name)
        self.entries = []
        self.patients = 0
