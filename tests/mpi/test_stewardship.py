"""Review and stewardship: link, unlink, merge, unmerge, distinct; history and events."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from .conftest import create, wait_linked
from .factories import patient, resident_id

HOME = "福建省莆田市荔城区拱辰街道学园社区学园南街12号3栋401室"
STEWARD = {"X-Phix-Client": "steward-lin"}


def params(**values: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": k, "valueString": v} for k, v in values.items()],
    }


def out(body: dict[str, Any], name: str) -> Any:
    for p in body["parameter"]:
        if p["name"] == name:
            return p.get("valueReference", {}).get("reference", "").removeprefix("Patient/") or next(
                v for k, v in p.items() if k.startswith("value")
            )
    return None


async def golden_body(client: httpx.AsyncClient, golden: str) -> dict[str, Any]:
    body = (await client.get(f"/Patient/{golden}")).json()
    return {k: v for k, v in body.items() if k not in ("meta", "id")}


async def two_residents(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> tuple[str, str, dict[str, str]]:
    """The same woman registered without ID at two hospitals under different phones and homes."""
    a = await create(
        client,
        patient("陈", "丽华", birth="1980-05-17", org="ptsdyyy", mrn="A1", phone="13812345678", address=HOME),
    )
    b = await create(
        client, patient("陈", "莉华", birth="1980-05-17", org="ptszyy", mrn="B1", phone="13900001111")
    )
    links = await wait_linked(conn, [a, b])
    assert links[a] != links[b]
    return a, b, links


async def test_possible_match_is_queued_for_review_with_scores(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    a, b, links = await two_residents(client, conn)
    bundle = (await client.get("/Patient/$mpi-review")).json()
    tasks = [e["resource"] for e in bundle["entry"]]
    assert len(tasks) == 1
    task = tasks[0]
    assert task["resourceType"] == "Task" and task["status"] == "requested"
    assert task["focus"]["reference"] == f"Patient/{b}" and task["for"]["reference"] == f"Patient/{links[b]}"
    candidate = task["input"][0]
    assert candidate["valueReference"]["reference"] == f"Patient/{links[a]}"
    details = {e["url"]: e for e in candidate["extension"][0]["extension"]}
    assert details["grade"]["valueCode"] in ("probable", "possible")
    fields = [
        e["valueString"]
        for e in candidate["extension"][0]["extension"]
        if e["url"] in ("agreed", "disagreed")
    ]
    assert "birth" in fields and "phone" in fields


async def test_resolve_link_then_unlink_round_trip(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    a, b, links = await two_residents(client, conn)
    review_id = await conn.fetchval("SELECT id FROM mpi_review WHERE patient_id = $1", b)
    resolved = await client.post(
        "/Patient/$mpi-resolve",
        json=params(review=str(review_id), decision="link", reason="same person, called her"),
        headers=STEWARD,
    )
    assert resolved.status_code == 200, resolved.text
    assert (await wait_linked(conn, [b]))[b] == links[a]
    golden = (await client.get(f"/Patient/{links[a]}")).json()
    assert len(golden["link"]) == 2
    assert (await client.get(f"/Patient/{links[b]}")).json()["active"] is False  # merged away
    # a later update of b never undoes the manual link
    body = (await client.get(f"/Patient/{b}")).json()
    body["telecom"] = [{"system": "phone", "value": "13700000000"}]
    assert (await client.put(f"/Patient/{b}", json=body)).status_code == 200
    row = await conn.fetchrow("SELECT golden_id, manual FROM mpi_record WHERE patient_id = $1", b)
    assert (row["golden_id"], row["manual"]) == (links[a], True)
    unlinked = await client.post(
        "/Patient/$mpi-unlink", json=params(patient=b, reason="different person after all"), headers=STEWARD
    )
    assert unlinked.status_code == 200, unlinked.text
    fresh = out(unlinked.json(), "resident")
    assert fresh not in (links[a], links[b])
    assert await conn.fetchval("SELECT count(*) FROM mpi_distinct") == 1
    history = (await client.get(f"/Patient/{b}/$mpi-history")).json()
    actions = [e["resource"]["type"]["code"] for e in history["entry"]]
    assert actions[:1] == ["new-resident"] and "relink" in actions and actions[-1] == "unlink"
    last = history["entry"][-1]["resource"]
    assert last["agent"][0]["who"]["display"] == "steward-lin" and last["agent"][0]["requestor"] is True
    assert last["outcomeDesc"] == "different person after all"


async def test_merge_then_unmerge_restores_the_prior_state(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    a, b, links = await two_residents(client, conn)
    before_links = await conn.fetch(
        "SELECT patient_id, golden_id, grade, manual, score, rule FROM mpi_record ORDER BY 1"
    )
    before_a, before_b = await golden_body(client, links[a]), await golden_body(client, links[b])
    merged = await client.post(
        "/Patient/$mpi-merge", json=params(source=links[b], target=links[a]), headers=STEWARD
    )
    assert merged.status_code == 200, merged.text
    survivor = await golden_body(client, links[a])
    assert sorted(x["other"]["reference"] for x in survivor["link"]) == sorted(
        [f"Patient/{a}", f"Patient/{b}"]
    )
    gone = await golden_body(client, links[b])
    assert gone["active"] is False and gone["link"] == [
        {"other": {"reference": f"Patient/{links[a]}"}, "type": "replaced-by"}
    ]
    again = await client.post("/Patient/$mpi-merge", json=params(source=links[b], target=links[a]))
    assert again.status_code == 409
    undone = await client.post("/Patient/$mpi-unmerge", json=params(resident=links[b]), headers=STEWARD)
    assert undone.status_code == 200, undone.text
    after_links = await conn.fetch(
        "SELECT patient_id, golden_id, grade, manual, score, rule FROM mpi_record ORDER BY 1"
    )
    assert [tuple(r) for r in after_links] == [tuple(r) for r in before_links]
    assert await golden_body(client, links[a]) == before_a
    assert await golden_body(client, links[b]) == before_b
    assert (await client.post("/Patient/$mpi-unmerge", json=params(resident=links[b]))).status_code == 409


async def test_not_the_same_person_keeps_records_apart(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    rid = resident_id("1980-05-17", 22)
    a = await create(client, patient("陈", "丽华", rid=rid, org="ptsdyyy", mrn="A1"))
    b = await create(client, patient("陈", "丽华", rid=rid, org="ptszyy", mrn="B1"))
    links = await wait_linked(conn, [a, b])
    assert links[a] == links[b]
    response = await client.post(
        "/Patient/$mpi-distinct", json=params(patient=a, other=b, reason="ID card lent"), headers=STEWARD
    )
    assert response.status_code == 200, response.text
    links = await wait_linked(conn, [a, b])
    assert links[a] != links[b]
    # the engine never links them again, even on a new write of either
    body = (await client.get(f"/Patient/{a}")).json()
    body["gender"] = "female"
    assert (await client.put(f"/Patient/{a}", json=body)).status_code == 200
    c = await create(client, patient("陈", "丽华", rid=rid, org="pthjyy", mrn="C1"))
    links = await wait_linked(conn, [a, b, c])
    assert links[a] != links[b]
    link = await client.post("/Patient/$mpi-link", json=params(patient=a, resident=links[b]))
    assert link.status_code == 409 and link.json()["issue"][0]["code"] == "business-rule"


async def test_event_feed_is_ordered_and_pageable(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    await two_residents(client, conn)
    first = (await client.get("/Patient/$mpi-events", params={"_count": "2"})).json()
    assert [e["resource"]["type"]["code"] for e in first["entry"]] == ["new-resident", "new-resident"]
    seqs = [int(e["resource"]["id"].removeprefix("mpi-")) for e in first["entry"]]
    nxt = next(x["url"] for x in first["link"] if x["relation"] == "next")
    assert f"since={seqs[-1]}" in nxt
    rest = (await client.get("/Patient/$mpi-events", params={"since": str(seqs[-1])})).json()
    assert [e["resource"]["type"]["code"] for e in rest["entry"]] == ["review-open"]
    event = first["entry"][1]["resource"]
    assert {e["url"].rsplit("/", 1)[-1] for e in event.get("extension", [])} >= {"mpi-match-grade"}


async def test_bad_stewardship_inputs_are_operation_outcomes(client: httpx.AsyncClient) -> None:
    cases = [
        (
            "/Patient/$mpi-link",
            {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueString": "x"}]},
            400,
        ),
        ("/Patient/$mpi-link", params(patient="nobody", resident="nobody2"), 404),
        ("/Patient/$mpi-merge", params(source="x", target="x"), 400),
        ("/Patient/$mpi-unmerge", params(resident="never"), 404),
        ("/Patient/$mpi-resolve", params(review="abc", decision="link"), 400),
        ("/Patient/$mpi-resolve", params(review="99", decision="link"), 404),
        ("/Patient/$mpi-unlink", {"resourceType": "Patient"}, 400),
        ("/Patient/$mpi-unlink", params(patient="a", bogus="1"), 400),
    ]
    for url, body, status in cases:
        response = await client.post(url, json=body)
        assert response.status_code == status, (url, body, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
