"""Patient/$everything: compartment, referenced resources, filters and paging."""

from __future__ import annotations

import httpx
import pytest


async def _setup(client: httpx.AsyncClient) -> tuple[str, str]:
    await client.put(
        "/Organization/org1", json={"resourceType": "Organization", "id": "org1", "name": "莆田市第一医院"}
    )
    await client.put(
        "/Practitioner/dr1", json={"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "郑"}]}
    )
    patient = (
        await client.post("/Patient", json={"resourceType": "Patient", "name": [{"family": "林"}]})
    ).json()["id"]
    other = (
        await client.post("/Patient", json={"resourceType": "Patient", "name": [{"family": "吴"}]})
    ).json()["id"]
    for year in range(2019, 2025):
        for pid in (patient, other):
            response = await client.post(
                "/Observation",
                json={
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "heart rate"},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": f"{year}-06-15T08:00:00+08:00",
                    "performer": [{"reference": "Practitioner/dr1"}],
                },
            )
            assert response.status_code == 201
    await client.post(
        "/Encounter",
        json={
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{patient}"},
            "serviceProvider": {"reference": "Organization/org1"},
        },
    )
    return patient, other


def _kinds(bundle: dict[str, object]) -> list[tuple[str, str]]:
    return [(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]]  # type: ignore[index,union-attr]


async def test_everything_returns_compartment_and_references_only_for_that_patient(
    client: httpx.AsyncClient,
) -> None:
    patient, other = await _setup(client)
    response = await client.get(f"/Patient/{patient}/$everything")
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["type"] == "searchset"
    kinds = _kinds(bundle)
    assert kinds.count(("Observation", "match")) == 6
    assert ("Encounter", "match") in kinds and ("Patient", "match") in kinds
    assert ("Practitioner", "include") in kinds and ("Organization", "include") in kinds
    subjects = {
        e["resource"]["subject"]["reference"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }
    assert subjects == {f"Patient/{patient}"}
    assert all(e["resource"].get("id") != other for e in bundle["entry"])


async def test_everything_type_since_and_care_dates(client: httpx.AsyncClient) -> None:
    patient, _ = await _setup(client)
    only_enc = (await client.get(f"/Patient/{patient}/$everything?_type=Encounter")).json()
    assert [k for k in _kinds(only_enc) if k[1] == "match"] == [("Encounter", "match")]
    dated = (
        await client.get(f"/Patient/{patient}/$everything?_type=Observation&start=2021-01-01&end=2022-12-31")
    ).json()
    years = sorted(
        e["resource"]["effectiveDateTime"][:4] for e in dated["entry"] if e["search"]["mode"] == "match"
    )
    assert years == ["2021", "2022"]
    future = (await client.get(f"/Patient/{patient}/$everything?_since=2999-01-01")).json()
    assert future["entry"] == []


async def test_everything_pages_cover_everything_once(client: httpx.AsyncClient) -> None:
    patient, _ = await _setup(client)
    seen: list[str] = []
    url: str | None = f"/Patient/{patient}/$everything?_count=3"
    pages = 0
    while url:
        bundle = (await client.get(url)).json()
        seen += [e["fullUrl"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://phix.test/fhir", "") if nxt else None
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 8  # Patient + 6 Observations + 1 Encounter


@pytest.mark.parametrize(
    ("query", "status"), [("_type=Nope", 400), ("_count=x", 400), ("foo=1", 400), ("start=notadate", 400)]
)
async def test_everything_bad_parameters(client: httpx.AsyncClient, query: str, status: int) -> None:
    patient, _ = await _setup(client)
    response = await client.get(f"/Patient/{patient}/$everything?{query}")
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_everything_unknown_and_deleted_patient(client: httpx.AsyncClient) -> None:
    assert (await client.get("/Patient/nobody/$everything")).status_code == 404
    pid = (await client.post("/Patient", json={"resourceType": "Patient"})).json()["id"]
    await client.delete(f"/Patient/{pid}")
    assert (await client.get(f"/Patient/{pid}/$everything")).status_code == 410
