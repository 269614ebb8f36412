"""Every parameter type and modifier against the real PostgreSQL, through the HTTP API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

Finder = Callable[..., Awaitable[list[str]]]
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RESIDENT_ID = "https://fhir.putian.gov.cn/NamingSystem/resident-id"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("family", "chen")], []),  # family is 陈; the default normaliser does not transliterate
        ([("family", "陈")], ["p1"]),
        ([("family", "MULL")], ["p3"]),  # case- and accent-insensitive starts-with
        ([("given", "jose")], ["p3"]),
        ([("name", "明")], ["p1"]),
        ([("name:exact", "Müller")], ["p3"]),
        ([("name:exact", "muller")], []),
        ([("name:contains", "LLE")], ["p3"]),
        ([("address-city", "莆田")], ["p1"]),
        ([("address", "城厢")], ["p1"]),
        ([("family", "陈,曾")], ["p1", "p2"]),  # OR
        ([("family", "陈"), ("gender", "female")], []),  # AND
    ],
)
async def test_string(ids: Finder, params: list[tuple[str, str]], expected: list[str]) -> None:
    assert await ids("Patient", *params) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [("chen ming", ["p1"]), ("chenming", ["p1"]), ("Chén", ["p1"]), ("陈明", ["p1"]), ("zeng hua", ["p2"]),
     ("hua", ["p2"]), ("ming chen", ["p1"]), ("wang", [])],
)  # fmt: skip
async def test_pinyin_name_profile_parameter(ids: Finder, query: str, expected: list[str]) -> None:
    assert await ids("Patient", ("name-pinyin", query)) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("gender", "male")], ["p1"]),
        ([("gender", "male,female")], ["p1", "p2"]),
        ([("gender:not", "male")], ["p2", "p3"]),
        ([("gender:missing", "true")], ["p3"]),
        ([("gender:missing", "false")], ["p1", "p2"]),
        ([("identifier", f"{RESIDENT_ID}|35030219900101123X")], ["p1"]),
        ([("identifier", "35030219900101123X")], ["p1"]),
        ([("identifier", "|35030219900101123X")], []),
        ([("identifier", f"{RESIDENT_ID}|")], ["p1"]),
        ([("identifier:of-type", f"{V2_0203}|NI|35030219900101123X")], ["p1"]),
        ([("identifier:of-type", f"{V2_0203}|MR|35030219900101123X")], []),
        ([("active", "false")], ["p3"]),
        ([("deceased", "true")], ["p2"]),
        ([("deceased", "false")], ["p1", "p3"]),
        ([("phone", "0594-2345678")], ["p1"]),
        ([("email", "0594-2345678")], []),
        ([("telecom", "email|chen@example.cn")], ["p1"]),
        ([("_tag", "urn:phix:src|his")], ["p1"]),
        ([("_id", "p1,p3")], ["p1", "p3"]),
    ],
)
async def test_token_on_patient(ids: Finder, params: list[tuple[str, str]], expected: list[str]) -> None:
    assert await ids("Patient", *params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("code", f"{LOINC}|2345-7")], ["o-glu1", "o-glu2"]),
        ([("code:text", "blood pre")], ["o-bp"]),
        ([("code:text", "gluc")], ["o-glu1", "o-glu2"]),
        ([("category", "laboratory,vital-signs")], ["o-bp", "o-glu1"]),
        ([("category:missing", "true")], ["o-glu2"]),
        ([("status:not", "final")], ["o-glu2"]),
        ([("combo-code", "8480-6")], ["o-bp"]),
    ],
)
async def test_token_on_observation(ids: Finder, params: list[tuple[str, str]], expected: list[str]) -> None:
    assert await ids("Observation", *params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("birthdate", "1990")], ["p1"]),
        ([("birthdate", "1990-01")], ["p1"]),
        ([("birthdate", "1990-01-01")], ["p1"]),
        ([("birthdate", "1990-01-02")], []),
        ([("birthdate", "ge1986")], ["p1"]),
        ([("birthdate", "lt1990-01-01")], ["p2"]),
        ([("birthdate", "le1990-01-01")], ["p1", "p2"]),
        ([("birthdate", "gt1985-06-15")], ["p1"]),
        ([("birthdate", "ne1990")], ["p2"]),
        ([("birthdate", "sa1985-06-15")], ["p1"]),
        ([("birthdate", "eb1990")], ["p2"]),
        ([("birthdate", "ap1990-01-05")], ["p1"]),
        ([("birthdate", "ge1980"), ("birthdate", "lt1989")], ["p2"]),
        ([("birthdate:missing", "true")], ["p3"]),
        ([("death-date", "2020-02")], ["p2"]),
    ],
)
async def test_date_on_patient(ids: Finder, params: list[tuple[str, str]], expected: list[str]) -> None:
    assert await ids("Patient", *params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # o-bp: 2024-05-01T10:00:00+08:00 (one second); o-glu1: 2024-05-02 (a day in China time);
        # o-glu2: the Period 2023-12-31T23:30Z .. 2024-01-01T00:30Z (= 07:30 .. 08:30 on 1 Jan in China)
        ([("date", "2024-05-01")], ["o-bp"]),
        ([("date", "2024-05-01T02:00:00Z")], ["o-bp"]),
        ([("date", "2024-05")], ["o-bp", "o-glu1"]),
        ([("date", "2024")], ["o-bp", "o-glu1", "o-glu2"]),
        ([("date", "2023")], []),
        ([("date", "2023-12-31T23:00:00Z")], []),
        ([("date", "gt2023-12-31T23:59:00Z")], ["o-bp", "o-glu1", "o-glu2"]),
        ([("date", "lt2024-01-01T00:00:00Z")], ["o-glu2"]),
        ([("date", "eb2024-01-02")], ["o-glu2"]),
        ([("date", "sa2024-05-01T10:00:00+08:00")], ["o-glu1"]),
        ([("date", "ge2024-05-02")], ["o-glu1"]),
        ([("date", "le2024-01-01")], ["o-glu2"]),
    ],
)
async def test_date_on_observation(ids: Finder, params: list[tuple[str, str]], expected: list[str]) -> None:
    assert await ids("Observation", *params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("value-quantity", f"5.4|{UCUM}|mmol/L")], ["o-glu1"]),
        ([("value-quantity", f"6.1|{UCUM}|mmol/L")], ["o-glu2"]),  # stored as 6100 umol/L
        ([("value-quantity", f"gt5.5|{UCUM}|mmol/L")], ["o-glu2"]),
        ([("value-quantity", f"lt6|{UCUM}|mmol/L")], ["o-glu1"]),
        ([("value-quantity", "5.4||mmol/L")], ["o-glu1"]),
        ([("value-quantity", "6100")], ["o-glu2"]),
        ([("value-quantity", "ap5")], ["o-glu1"]),
        ([("value-quantity", "5")], ["o-glu1"]),  # 5 means [4.5, 5.5): implicit precision
        ([("value-quantity", "5.0")], []),
        ([("value-quantity:missing", "true")], ["o-bp"]),
        ([("component-value-quantity", "ge100")], ["o-bp"]),
    ],
)
async def test_quantity(ids: Finder, params: list[tuple[str, str]], expected: list[str]) -> None:
    assert await ids("Observation", *params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("component-code-value-quantity", f"{LOINC}|8480-6$gt100")], ["o-bp"]),
        ([("component-code-value-quantity", "8480-6$80")], []),  # 80 is the diastolic component
        ([("component-code-value-quantity", "8462-4$80")], ["o-bp"]),
        ([("component-code-value-quantity", "8462-4$lt70,8480-6$120")], ["o-bp"]),
        ([("code-value-quantity", f"{LOINC}|2345-7$gt6|{UCUM}|mmol/L")], ["o-glu2"]),
        ([("code-value-quantity", "2345-7$lt10")], ["o-glu1"]),
        ([("combo-code-value-quantity", "8480-6$120")], ["o-bp"]),
        ([("code-value-quantity:missing", "false")], ["o-glu1", "o-glu2"]),
    ],
)
async def test_composite(ids: Finder, params: list[tuple[str, str]], expected: list[str]) -> None:
    assert await ids("Observation", *params) == expected


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("Observation", [("subject", "Patient/p1")], ["o-bp", "o-glu1"]),
        ("Observation", [("subject:Patient", "p1")], ["o-bp", "o-glu1"]),
        ("Observation", [("patient", "p2")], ["o-glu2"]),
        ("Observation", [("subject", "http://phix.test/fhir/Patient/p2")], ["o-glu2"]),
        ("Observation", [("subject", "http://elsewhere.org/fhir/Patient/p2")], []),
        ("Observation", [("subject", "Patient/p1,Patient/p2")], ["o-bp", "o-glu1", "o-glu2"]),
        ("Observation", [("subject:missing", "true")], []),
        ("Observation", [("performer", "Practitioner/d1")], ["o-bp"]),
        ("Observation", [("subject:Patient.name", "陈")], ["o-bp", "o-glu1"]),
        ("Observation", [("subject.gender", "female")], ["o-glu2"]),
        ("Observation", [("subject:Patient.organization.name", "xianyou")], ["o-glu2"]),
        ("Observation", [("subject:Patient.organization.partof.identifier", "H001")], ["o-glu2"]),
        ("Patient", [("organization", "org1")], ["p1"]),
        ("Patient", [("general-practitioner:Practitioner.name", "林")], ["p1"]),
        ("Patient", [("_has:Observation:patient:code", "2345-7")], ["p1", "p2"]),
        ("Patient", [("_has:Observation:subject:code", "85354-9")], ["p1"]),
        ("Patient", [("_has:Observation:patient:_has:Provenance:target:agent", "Practitioner/d1")], ["p1"]),
        (
            "Organization",
            [("_has:Patient:organization:_has:Observation:patient:code", "2345-7")],
            ["org1", "org2"],
        ),
        ("Organization", [("partof:missing", "false")], ["org2"]),
        ("Provenance", [("target", "Observation/o-bp")], ["prov1"]),
    ],
)
async def test_reference_chain_and_has(
    ids: Finder, path: str, params: list[tuple[str, str]], expected: list[str]
) -> None:
    assert await ids(path, *params) == expected


async def test_reference_identifier(seeded: httpx.AsyncClient, ids: Finder) -> None:
    task = {
        "resourceType": "Task",
        "id": "t1",
        "status": "requested",
        "intent": "order",
        "owner": {"identifier": {"system": "urn:putian:org", "value": "H001"}},
        "meta": {"profile": ["http://putian.example/protocols/ct/head"]},
    }
    assert (await seeded.put("/Task/t1", json=task)).status_code == 201
    assert await ids("Task", ("owner:identifier", "urn:putian:org|H001")) == ["t1"]
    assert await ids("Task", ("owner:identifier", "urn:putian:org|H002")) == []
    assert await ids("Task", ("_profile", "http://putian.example/protocols/ct/head")) == ["t1"]
    assert await ids("Task", ("_profile:below", "http://putian.example/protocols")) == ["t1"]
    assert await ids("Task", ("_profile:below", "http://putian.example/other")) == []
    assert await ids("Task", ("_profile:above", "http://putian.example/protocols/ct/head/v2")) == ["t1"]
    assert await ids("Task", ("_profile:missing", "true")) == []


async def test_escaped_comma_is_part_of_the_value(seeded: httpx.AsyncClient, ids: Finder) -> None:
    org = {"resourceType": "Organization", "id": "org3", "name": "Li, Wang & Partners"}
    assert (await seeded.put("/Organization/org3", json=org)).status_code == 201
    assert await ids("Organization", ("name", "li\\, wang")) == ["org3"]
    assert await ids("Organization", ("name", "wang\\,li")) == []  # one value, not "wang" OR "li"
    assert await ids("Organization", ("name", "wang,li")) == ["org3"]
    assert await ids("Organization", ("name", "li,putian")) == ["org1", "org3"]


async def test_last_updated_and_updates_replace_index_rows(seeded: httpx.AsyncClient, ids: Finder) -> None:
    assert await ids("Patient", ("_lastUpdated", "ge2020")) == ["p1", "p2", "p3"]
    assert await ids("Patient", ("_lastUpdated", "lt2020")) == []
    changed = {"resourceType": "Patient", "id": "p3", "name": [{"family": "Wang"}], "gender": "other"}
    assert (await seeded.put("/Patient/p3", json=changed)).status_code == 200
    assert await ids("Patient", ("family", "muller")) == []
    assert await ids("Patient", ("family", "wang")) == ["p3"]
    assert (await seeded.delete("/Patient/p3")).status_code in (200, 204)
    assert await ids("Patient", ("family", "wang")) == []
    assert await ids("Patient", ("gender:missing", "true")) == []
