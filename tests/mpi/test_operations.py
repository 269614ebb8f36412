"""The FHIR operations end to end: $match, $ihe-pix, $resolve-card, $everything, status."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from phix.identity import systems

from .conftest import create, wait_linked
from .factories import patient, resident_id

HOME = "福建省莆田市荔城区拱辰街道学园社区学园南街12号3栋401室"
RID = resident_id("1980-05-17", 22)
CARD = "3503000012345678"
EHC = "0123456789ABCDEF0123456789ABCDEF"


def match_params(resource: dict[str, Any], **extra: Any) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "resource", "resource": resource}]
    for name, value in extra.items():
        key = (
            "valueBoolean"
            if isinstance(value, bool)
            else "valueInteger"
            if isinstance(value, int)
            else "valueString"
        )
        params.append({"name": name, key: value})
    return {"resourceType": "Parameters", "parameter": params}


def values(body: dict[str, Any], name: str) -> list[Any]:
    out = []
    for p in body["parameter"]:
        if p["name"] == name:
            out.append(next(v for k, v in p.items() if k.startswith("value")))
    return out


async def resident(client: httpx.AsyncClient, conn: asyncpg.Connection) -> tuple[str, str, str]:
    a = await create(
        client,
        patient(
            "陈",
            "丽华",
            rid=RID,
            org="ptsdyyy",
            mrn="A1",
            phone="13812345678",
            address=HOME,
            citizen_card=CARD,
        ),
    )
    b = patient("陳", "麗華", rid=RID, org="ptxyfsyy", mrn="B7", virtual_card=EHC)
    b["identifier"].append({"system": systems.visit_card_system("ptxyfsyy"), "value": "VC-0042"})
    b_id = await create(client, b)
    links = await wait_linked(conn, [a, b_id])
    assert links[a] == links[b_id]
    return a, b_id, links[a]


async def test_match_finds_the_resident_with_grade_and_score(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    _, _, golden = await resident(client, conn)
    query = patient("Chen", "Lihua", text="CHEN LIHUA", phone="+86 138 1234 5678", address=HOME)
    response = await client.post("/Patient/$match", json=match_params(query))
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    entry = bundle["entry"][0]
    assert entry["resource"]["id"] == golden
    assert entry["search"]["mode"] == "match" and 0.99 < entry["search"]["score"] <= 1
    assert entry["search"]["extension"] == [
        {"url": "http://hl7.org/fhir/StructureDefinition/match-grade", "valueCode": "certain"}
    ]
    weak = patient("陈", "丽华", birth="1980-05-17", phone="13900000000")
    graded = (await client.post("/Patient/$match", json=match_params(weak))).json()
    assert graded["entry"][0]["search"]["extension"][0]["valueCode"] in ("probable", "possible")
    only = (await client.post("/Patient/$match", json=match_params(weak, onlyCertainMatches=True))).json()
    assert only["total"] == 0
    nobody = (
        await client.post("/Patient/$match", json=match_params(patient("林", "建国", birth="1950-01-01")))
    ).json()
    assert nobody["total"] == 0 and nobody["entry"] == []


async def test_match_refuses_bad_input(client: httpx.AsyncClient) -> None:
    cases = [
        ({"resourceType": "Parameters", "parameter": []}, 400),
        ({"resourceType": "Patient"}, 400),
        (match_params({"resourceType": "Observation"}), 400),
        (match_params({"resourceType": "Patient", "birthDate": "1980-13-45"}), 422),
        (match_params(patient(), count=0), 400),
        (match_params(patient(), onlyCertainMatches="maybe"), 400),
    ]
    for body, status in cases:
        response = await client.post("/Patient/$match", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
    assert (await client.post("/Patient/$match", content=b"{nope")).status_code == 400


async def test_ihe_pix_cross_references_every_identifier(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    a, b, golden = await resident(client, conn)
    mrn_a = systems.mrn_system("ptsdyyy")
    response = await client.get("/Patient/$ihe-pix", params={"sourceIdentifier": f"{mrn_a}|A1"})
    assert response.status_code == 200, response.text
    body = response.json()
    ids = {(i["system"], i["value"]) for i in values(body, "targetIdentifier")}
    assert {
        (mrn_a, "A1"),
        (systems.mrn_system("ptxyfsyy"), "B7"),
        (systems.RESIDENT_ID, RID),
        (systems.CITIZEN_CARD, CARD),
        (systems.VIRTUAL_CARD, EHC),
        (systems.visit_card_system("ptxyfsyy"), "VC-0042"),
    } <= ids
    refs = {r["reference"] for r in values(body, "targetId")}
    assert refs == {f"Patient/{golden}", f"Patient/{a}", f"Patient/{b}"}
    legacy = RID[:6] + RID[8:17]  # the same person's 15-digit ID finds them too
    other = systems.mrn_system("ptxyfsyy")
    filtered = (
        await client.get(
            "/Patient/$ihe-pix",
            params={"sourceIdentifier": f"{systems.RESIDENT_ID}|{legacy}", "targetSystem": other},
        )
    ).json()
    assert values(filtered, "targetIdentifier") == [{"system": other, "value": "B7"}]
    assert [r["reference"] for r in values(filtered, "targetId")] == [f"Patient/{b}"]
    errors = [
        ({"sourceIdentifier": "urn:unknown|1"}, 400),
        ({"sourceIdentifier": "A1"}, 400),
        ({"sourceIdentifier": f"{mrn_a}|NOPE"}, 404),
        ({"sourceIdentifier": f"{mrn_a}|A1", "targetSystem": "urn:unknown"}, 403),
    ]
    for query, status in errors:
        response = await client.get("/Patient/$ihe-pix", params=query)
        assert response.status_code == status, (query, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_resolve_card_from_any_card(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    a, _, golden = await resident(client, conn)
    cards = [
        RID.lower(),
        f"{RID[:6]} {RID[6:14]} {RID[14:]}",
        CARD,
        EHC,
        f"EHC:{EHC}",
        f'{{"ehc": "{EHC}", "v": 1}}',
        f"https://ehc.fujian.example/qr?ehc={EHC}",
        "VC-0042",
        "B7",
    ]
    for card in cards:
        response = await client.get("/Patient/$resolve-card", params={"card": card, "institution": "ptsdyyy"})
        assert response.status_code == 200, (card, response.text)
        body = response.json()
        assert values(body, "resident") == [{"reference": f"Patient/{golden}"}], card
        assert values(body, "patient") == [{"reference": f"Patient/{a}"}]
        assert values(body, "mrn") == [{"system": systems.mrn_system("ptsdyyy"), "value": "A1"}]
        assert values(body, "registered") == [False]


async def test_resolve_card_registers_the_resident_when_asked(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    _, _, golden = await resident(client, conn)
    query = {"card": CARD, "institution": "pthjyy"}
    unregistered = (await client.get("/Patient/$resolve-card", params=query)).json()
    assert values(unregistered, "patient") == [] and values(unregistered, "registered") == [False]
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "card", "valueString": CARD}, {"name": "institution", "valueString": "pthjyy"},
        {"name": "register", "valueBoolean": True}, {"name": "mrn", "valueString": "HJ-900"},
    ]}  # fmt: skip
    response = await client.post("/Patient/$resolve-card", json=body)
    assert response.status_code == 200, response.text
    created = response.json()
    assert values(created, "registered") == [True]
    assert values(created, "mrn") == [{"system": systems.mrn_system("pthjyy"), "value": "HJ-900"}]
    new_id = values(created, "patient")[0]["reference"].removeprefix("Patient/")
    assert (await wait_linked(conn, [new_id]))[new_id] == golden
    local = (await client.get(f"/Patient/{new_id}")).json()
    assert local["name"][0]["text"] == "陈丽华" and local["birthDate"] == "1980-05-17"
    again = (await client.post("/Patient/$resolve-card", json=body)).json()
    assert values(again, "registered") == [False] and values(again, "patient") == [
        {"reference": f"Patient/{new_id}"}
    ]


async def test_resolve_card_errors(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    await resident(client, conn)
    bad_check = RID[:17] + ("0" if RID[17] != "0" else "1")
    # the same visit-card number at two institutions, two different people: ambiguous without a system
    for org, name in (("ptszyy", "林"), ("pthjyy", "黄")):
        res = patient(name, "建国", birth="1950-01-01", gender="male", org=org, mrn=f"{org}-1")
        res["identifier"].append({"system": systems.visit_card_system(org), "value": "777"})
        await create(client, res)
    cases = [
        ({"card": bad_check, "institution": "ptsdyyy"}, 422),
        ({"card": "nobody-has-this", "institution": "ptsdyyy"}, 404),
        ({"card": CARD}, 400),
        ({"card": CARD, "institution": "Bad Code!"}, 400),
        ({"card": "{not json", "institution": "ptsdyyy"}, 400),
        ({"card": "777", "institution": "ptsdyyy"}, 409),
    ]
    for query, status in cases:
        response = await client.get("/Patient/$resolve-card", params=query)
        assert response.status_code == status, (query, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
    one = await client.get(
        "/Patient/$resolve-card",
        params={"card": "777", "institution": "ptsdyyy", "system": systems.visit_card_system("pthjyy")},
    )
    assert one.status_code == 200


async def test_everything_of_a_resident_spans_all_hospitals(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    a, b, golden = await resident(client, conn)
    for pid, code in ((a, "8867-4"), (b, "8480-6")):
        obs = {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}  # fmt: skip
        assert (await client.post("/Observation", json=obs)).status_code == 201
    response = await client.get(f"/Patient/{golden}/$everything")
    assert response.status_code == 200, response.text
    kinds = sorted(e["resource"]["resourceType"] for e in response.json()["entry"])
    assert kinds == ["Observation", "Observation", "Patient", "Patient", "Patient"]
    from phix.mpi.links import source_patient_ids

    assert await source_patient_ids(conn, golden) == sorted([a, b])
    assert await source_patient_ids(conn, a) == sorted([a, b])
    assert await source_patient_ids(conn, "unknown") == ["unknown"]


async def test_malformed_identifiers_are_kept_and_flagged(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    bad = RID[:17] + ("0" if RID[17] != "0" else "1")
    res = patient("陈", "丽华", rid=bad, phone="12345")
    res["identifier"].append({"value": "no-system"})
    pid = await create(client, res)
    await wait_linked(conn, [pid])
    stored = (await client.get(f"/Patient/{pid}")).json()
    assert stored["identifier"][0]["value"] == bad
    status = (await client.get(f"/Patient/{pid}/$mpi-status")).json()
    flags = values(status, "flag")
    assert any("id-checksum" in f for f in flags) and any("telecom" in f for f in flags)
    assert any("no system" in f for f in flags)
    assert values(status, "state") == ["linked"]
    assert (await client.get("/Patient/nobody/$mpi-status")).status_code == 404
