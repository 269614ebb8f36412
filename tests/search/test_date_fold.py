"""Several conditions on one date parameter: asked of the same index row when the element cannot
repeat (an index range scan), of any rows when it can (each value may meet another condition)."""

from __future__ import annotations

import httpx
import pytest

from phix.search.compiler import Compiler
from phix.search.parse import parse_query
from phix.search.registry import load_registry
from phix.search.sql import Sql

from .conftest import put


def _sql(res_type: str, params: list[tuple[str, str]]) -> str:
    registry = load_registry(None)
    compiler = Compiler(Sql(), registry)
    compiled = compiler.criteria((res_type,), "r", parse_query(params).criteria)
    return " AND ".join(c.sql for c in compiled)


def test_registry_knows_which_date_parameters_have_one_row() -> None:
    registry = load_registry(None)
    single = {
        (t, c)
        for t in registry.resource_types()
        for c, p in registry.params_for(t).items()
        if p.type == "date" and p.single
    }
    assert {("Patient", "birthdate"), ("Encounter", "date"), ("Immunization", "date")} <= single
    # a Timing (a row per event), a repeating path, a function: each may give several rows
    assert ("Observation", "date") not in single  # effective[x] includes Timing
    assert ("MedicationRequest", "date") not in single  # dosageInstruction.timing.event
    assert ("Condition", "onset-date") not in single  # onset.as(dateTime) | onset.as(Period)
    assert ("Encounter", "location-period") not in single  # Encounter.location repeats


def test_conditions_on_a_single_valued_date_share_one_exists() -> None:
    folded = _sql("Patient", [("birthdate", "ge1957-11-01"), ("birthdate", "lt1957-12-01")])
    assert folded.count("EXISTS") == 1
    apart = _sql("MedicationRequest", [("date", "ge2020-01-01"), ("date", "lt2020-02-01")])
    assert apart.count("EXISTS") == 2
    # OR lists and modifiers are not folded
    assert _sql("Patient", [("birthdate", "lt1950,gt2000"), ("birthdate", "ne1960")]).count("EXISTS") == 2
    assert _sql("Patient", [("birthdate", "ge1950"), ("birthdate:missing", "false")]).count("EXISTS") == 2


BIRTHS = [("oct", "1957-10-20"), ("nov", "1957-11-15"), ("year", "1957"), ("dec", "1957-12-01"), ("none", "")]


@pytest.mark.parametrize(
    "params",
    [
        [("birthdate", "ge1957-11-01"), ("birthdate", "lt1957-12-01")],
        [("birthdate", "ge1957-10-01"), ("birthdate", "lt1957-12-01")],
        [("birthdate", "gt1957-10-31"), ("birthdate", "le1957-11-30"), ("birthdate", "ne1957-11-15")],
        [("birthdate", "ge1957"), ("birthdate", "lt1958"), ("birthdate", "ne1957-10-20")],
        [("birthdate", "ge1957-12-01"), ("birthdate", "lt1957-11-01")],
        [("birthdate", "sa1957-10-01"), ("birthdate", "eb1958-01-01")],
        [("birthdate", "ap1957-11-10"), ("birthdate", "le1957-11")],
    ],
)
async def test_folded_birthdate_conditions_match_what_separate_conditions_match(
    client: httpx.AsyncClient, params: list[tuple[str, str]]
) -> None:
    for pid, birth in BIRTHS:
        await put(client, {"resourceType": "Patient", "id": pid, **({"birthDate": birth} if birth else {})})

    async def found(query: list[tuple[str, str]]) -> list[str]:
        response = await client.get("/Patient", params=query)
        assert response.status_code == 200, response.text
        return sorted(e["resource"]["id"] for e in response.json().get("entry", []))

    # "x,x" is the same condition as "x" but a list of values, which is never folded
    apart = [(name, f"{value},{value}") for name, value in params]
    assert _sql("Patient", params).count("EXISTS") == 1
    assert _sql("Patient", apart).count("EXISTS") == len(params)
    assert await found(params) == await found(apart)


async def test_a_repeating_date_still_matches_conditions_met_by_different_values(
    client: httpx.AsyncClient,
) -> None:
    await put(client, {"resourceType": "Patient", "id": "mr-patient"})
    await put(
        client,
        {
            "resourceType": "MedicationRequest",
            "id": "two-events",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": "aspirin"},
            "subject": {"reference": "Patient/mr-patient"},
            "dosageInstruction": [{"timing": {"event": ["2020-01-10", "2020-12-10"]}}],
        },
    )
    # January meets one condition, December the other; no single event meets both.
    response = await client.get(
        "/MedicationRequest", params=[("date", "lt2020-02-01"), ("date", "gt2020-11-01")]
    )
    assert response.status_code == 200, response.text
    assert [e["resource"]["id"] for e in response.json().get("entry", [])] == ["two-events"]


async def test_a_birth_month_finds_the_births_in_it_and_the_whole_year(client: httpx.AsyncClient) -> None:
    for pid, birth in BIRTHS:
        await put(client, {"resourceType": "Patient", "id": pid, **({"birthDate": birth} if birth else {})})
    response = await client.get(
        "/Patient", params=[("birthdate", "ge1957-11-01"), ("birthdate", "lt1957-12-01")]
    )
    assert sorted(e["resource"]["id"] for e in response.json()["entry"]) == ["nov", "year"]
