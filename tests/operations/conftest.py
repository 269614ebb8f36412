"""These tests check FHIR store semantics; the patient index (which adds golden Patient records to
every Patient write) is left out so counts and compartments are the store's own. The patient
index's interplay with bundles and $everything is tested in tests/mpi."""

from __future__ import annotations

import pytest


@pytest.fixture
def disabled_domains() -> list[str]:
    return ["mpi"]
