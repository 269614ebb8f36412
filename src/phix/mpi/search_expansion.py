"""Whole-city record search: a resident (golden Patient) in a Patient reference search parameter
stands for every source Patient linked to it.

``Observation?patient=Patient/<resident>`` (or ``subject=Patient/<resident>``, or the bare id on a
parameter that only targets Patient) returns the Observations of every hospital's record of that
resident. A source Patient id keeps its plain meaning (that one record), so hospital systems see
exactly the store's semantics. Installed as a search parameter expander by ``integration``.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from phix.mpi.links import golden_of, source_patient_ids


def _patient_reference_param(registry: Any, res_type: str | None, name: str) -> tuple[bool, bool]:
    """(is a reference parameter that can target Patient, targets only Patient)."""
    if res_type is None or (":" in name and not name.endswith(":Patient")) or "." in name:
        return False, False
    param = registry.param(res_type, name.split(":", 1)[0])
    if param is None or param.type != "reference":
        return False, False
    targets = tuple(param.targets)
    return "Patient" in targets, targets == ("Patient",) or name.endswith(":Patient")


async def expand_residents(
    conn: asyncpg.Connection, registry: Any, res_type: str | None, params: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in params:
        can, only_patient = _patient_reference_param(registry, res_type, name)
        if not can or "\\," in value:
            out.append((name, value))
            continue
        expanded: list[str] = []
        for item in value.split(","):
            pid = item[len("Patient/") :] if item.startswith("Patient/") else (item if only_patient else None)
            if pid and "/" not in pid and await golden_of(conn, pid) == pid:
                expanded += [
                    f"Patient/{p}" for p in dict.fromkeys([pid, *await source_patient_ids(conn, pid)])
                ]
            else:
                expanded.append(item)
        out.append((name, ",".join(expanded)))
    return out
