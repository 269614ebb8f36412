"""Storage tests count rows and versions of the store itself."""

from __future__ import annotations

import pytest


@pytest.fixture
def disabled_domains() -> list[str]:
    """Store semantics without the patient index's golden Patient records (tested in tests/mpi)."""
    return ["mpi"]
