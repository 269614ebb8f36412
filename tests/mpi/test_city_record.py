"""The whole-city record: a resident in a Patient reference search, and in $everything."""

from __future__ import annotations

import asyncpg
import httpx

from .conftest import create, wait_linked
from .factories import patient, resident_id


async def _observation(client: httpx.AsyncClient, patient_id: str, text: str) -> str:
    response = await client.post(
        "/Observation",
        json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": text},
            "subject": {"reference": f"Patient/{patient_id}"},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _one_resident_two_hospitals(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> tuple[str, str, str]:
    rid = resident_id("1975-03-02", 123)
    first = await create(client, patient("林", "建华", birth="1975-03-02", gender="male", rid=rid, mrn="A1"))
    second = await create(
        client, patient("林", "建華", birth="1975-03-02", gender="male", rid=rid, org="ptxyfsyy", mrn="B7")
    )
    residents = await wait_linked(conn, [first, second])
    assert residents[first] == residents[second]
    return residents[first], first, second


def _ids(bundle: dict[str, object]) -> set[str]:
    return {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"}  # type: ignore[index,union-attr]


async def test_resident_reference_search_returns_every_hospitals_records(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    resident, first, second = await _one_resident_two_hospitals(client, conn)
    obs_a = await _observation(client, first, "at hospital A")
    obs_b = await _observation(client, second, "at hospital B")
    other = await create(client, patient("吴", "芳", birth="1990-01-01", rid=resident_id("1990-01-01", 222)))
    await _observation(client, other, "someone else")

    for query in (f"patient=Patient/{resident}", f"patient={resident}", f"subject=Patient/{resident}"):
        bundle = (await client.get(f"/Observation?{query}")).json()
        assert _ids(bundle) == {obs_a, obs_b}, query
    # A hospital's own record keeps the store's meaning: that record only.
    assert _ids((await client.get(f"/Observation?patient={first}")).json()) == {obs_a}
    # Combined with other criteria and with OR lists.
    bundle = (
        await client.get(f"/Observation?patient={resident},{other}&code=http://loinc.org|8867-4")
    ).json()
    assert len(_ids(bundle)) == 3


async def test_resident_everything_is_the_whole_city_record(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    resident, first, second = await _one_resident_two_hospitals(client, conn)
    obs_a = await _observation(client, first, "a")
    obs_b = await _observation(client, second, "b")
    bundle = (await client.get(f"/Patient/{resident}/$everything")).json()
    found = _ids(bundle)
    assert {obs_a, obs_b, first, second, resident} <= found
