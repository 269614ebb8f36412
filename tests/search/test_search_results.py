"""Result parameters, links, compartments, system search, POST _search and errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

Finder = Callable[..., Awaitable[list[str]]]
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


async def get(client: httpx.AsyncClient, path: str, *params: tuple[str, str], **kw: Any) -> dict[str, Any]:
    response = await client.get(path, params=list(params), **kw)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((lk["url"] for lk in bundle["link"] if lk["relation"] == relation), None)


def entries(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    ]


def check_outcome(response: httpx.Response, status: int, code: str, text: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert [(i["severity"], i["code"]) for i in body["issue"]] == [("error", code)]
    assert text in body["issue"][0]["diagnostics"]


async def test_entries_have_full_urls_and_the_stored_bytes(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/Patient", ("_id", "p1"))
    read = await seeded.get("/Patient/p1")
    [entry] = bundle["entry"]
    assert entry["fullUrl"] == "http://phix.test/fhir/Patient/p1"
    assert entry["resource"] == read.json()
    assert entry["search"] == {"mode": "match"}
    assert bundle["total"] == 1  # the first page holds the whole result
    assert link(bundle, "self") == "http://phix.test/fhir/Patient?_id=p1"
    assert link(bundle, "next") is None


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("birthdate", ["p2", "p1", "p3"]),  # missing values last
        ("-birthdate", ["p1", "p2", "p3"]),
        ("family", ["p3", "p2", "p1"]),  # muller < 曾 (U+66FE) < 陈 (U+9648): code point order
        ("-_id", ["p3", "p2", "p1"]),
        ("gender,-_id", ["p2", "p1", "p3"]),
        ("-active,_id", ["p3", "p1", "p2"]),
    ],
)
async def test_sort(seeded: httpx.AsyncClient, sort: str, expected: list[str]) -> None:
    bundle = await get(seeded, "/Patient", ("_sort", sort))
    assert entries(bundle) == [f"Patient/{i}" for i in expected]


async def test_sort_on_last_updated_and_a_date_of_observations(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/Observation", ("_sort", "-date"))
    assert entries(bundle) == ["Observation/o-glu1", "Observation/o-bp", "Observation/o-glu2"]
    bundle = await get(seeded, "/Observation", ("_sort", "-_lastUpdated"))
    assert entries(bundle) == ["Observation/o-glu2", "Observation/o-glu1", "Observation/o-bp"]


async def page_through(client: httpx.AsyncClient, first: dict[str, Any], limit: int = 50) -> list[list[str]]:
    pages = [entries(first)]
    bundle = first
    while (url := link(bundle, "next")) and len(pages) < limit:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        bundle = response.json()
        pages.append(entries(bundle))
    return pages


async def test_paging_forward_and_back(seeded: httpx.AsyncClient) -> None:
    first = await get(seeded, "/Observation", ("_count", "1"), ("_sort", "date"))
    assert "total" not in first
    pages = await page_through(seeded, first)
    assert pages == [["Observation/o-glu2"], ["Observation/o-bp"], ["Observation/o-glu1"]]
    assert link(first, "previous") is None
    second = (await seeded.get(link(first, "next") or "")).json()
    back = (await seeded.get(link(second, "previous") or "")).json()
    assert entries(back) == ["Observation/o-glu2"]
    query = dict(parse_qsl(urlsplit(link(second, "self") or "").query))
    assert query["_count"] == "1" and query["_sort"] == "date" and "_cursor" in query


async def test_paging_stays_correct_while_others_write(client: httpx.AsyncClient) -> None:
    for i in range(10):
        assert (
            await client.put(f"/Patient/k{i:02}", json={"resourceType": "Patient", "id": f"k{i:02}"})
        ).status_code == 201
    first = await get(client, "/Patient", ("_count", "3"))
    seen = entries(first)
    bundle = first
    writes = 0
    while url := link(bundle, "next"):
        # between pages: delete one already seen, update one already seen and create a new one
        await client.delete(f"/{seen[0]}")
        await client.put(
            f"/{seen[-1]}", json={"resourceType": "Patient", "id": seen[-1].split("/")[1], "active": True}
        )
        assert (await client.post("/Patient", json={"resourceType": "Patient"})).status_code == 201
        writes += 1
        bundle = (await client.get(url)).json()
        seen.extend(entries(bundle))
    assert len(seen) == len(set(seen)), seen  # no repeats
    assert {f"Patient/k{i:02}" for i in range(10)} <= set(seen)  # no skips of rows present from the start
    assert writes >= 3


async def test_bad_cursor(seeded: httpx.AsyncClient) -> None:
    check_outcome(await seeded.get("/Patient", params={"_cursor": "garbage"}), 400, "invalid", "cursor")


async def test_count_and_max_count(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/Patient", ("_count", "2"))
    assert len(bundle["entry"]) == 2 and link(bundle, "next")
    bundle = await get(seeded, "/Patient", ("_count", "0"))
    assert bundle.get("entry", []) == [] and bundle["total"] == 3


@pytest.mark.parametrize(("mode", "expected"), [("accurate", 3), ("none", None)])
async def test_total(seeded: httpx.AsyncClient, mode: str, expected: int | None) -> None:
    bundle = await get(seeded, "/Patient", ("_count", "1"), ("_total", mode))
    assert bundle.get("total") == expected


async def test_total_estimate_is_a_number(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/Patient", ("_count", "1"), ("_total", "estimate"))
    assert isinstance(bundle["total"], int) and bundle["total"] >= 0


async def test_summary_count(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/Observation", ("code", "2345-7"), ("_summary", "count"))
    assert bundle["total"] == 2 and bundle.get("entry", []) == []


async def test_summary_true_text_data(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/Patient", ("_id", "p1"), ("_summary", "true"))
    resource = bundle["entry"][0]["resource"]
    assert "telecom" in resource and "address" in resource and "generalPractitioner" not in resource
    assert SUBSETTED in resource["meta"]["tag"]
    bundle = await get(seeded, "/Observation", ("_id", "o-bp"), ("_summary", "text"))
    assert set(bundle["entry"][0]["resource"]) == {"resourceType", "id", "meta", "status", "code"}
    bundle = await get(seeded, "/Observation", ("_id", "o-bp"), ("_summary", "data"))
    assert "component" in bundle["entry"][0]["resource"]


async def test_elements(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/Observation", ("_id", "o-glu1"), ("_elements", "value,subject"))
    resource = bundle["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "status", "code", "subject", "valueQuantity"}
    assert SUBSETTED in resource["meta"]["tag"]


async def test_include_and_revinclude(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/Observation", ("_id", "o-bp"), ("_include", "Observation:subject"))
    assert entries(bundle) == ["Observation/o-bp"] and entries(bundle, "include") == ["Patient/p1"]
    bundle = await get(
        seeded, "/Observation", ("code", "2345-7"), ("_include", "Observation:subject:Patient"),
        ("_include:iterate", "Patient:organization"),
    )  # fmt: skip
    assert sorted(entries(bundle, "include")) == [
        "Organization/org1",
        "Organization/org2",
        "Patient/p1",
        "Patient/p2",
    ]
    bundle = await get(seeded, "/Observation", ("_id", "o-bp"), ("_include", "*"))
    assert sorted(entries(bundle, "include")) == ["Patient/p1", "Practitioner/d1"]
    bundle = await get(seeded, "/Observation", ("_id", "o-bp"), ("_revinclude", "Provenance:target"))
    assert entries(bundle, "include") == ["Provenance/prov1"]
    bundle = await get(
        seeded, "/Patient", ("_id", "p1"), ("_revinclude", "Observation:subject"),
        ("_revinclude:iterate", "Provenance:target"),
    )  # fmt: skip
    assert sorted(entries(bundle, "include")) == [
        "Observation/o-bp", "Observation/o-glu1", "Provenance/prov1"
    ]  # fmt: skip
    bundle = await get(seeded, "/Organization", ("_id", "org1"), ("_revinclude", "*"))
    assert sorted(entries(bundle, "include")) == ["Encounter/e1", "Organization/org2", "Patient/p1"]


async def test_compartment_search(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/Patient/p1/Observation", ("code", "2345-7"))
    assert entries(bundle) == ["Observation/o-glu1"]
    assert link(bundle, "self") == "http://phix.test/fhir/Patient/p1/Observation?code=2345-7"
    bundle = await get(seeded, "/Patient/p1/Condition")
    assert entries(bundle) == ["Condition/c1"]
    bundle = await get(seeded, "/Patient/p2/Encounter")
    assert entries(bundle) == []
    bundle = await get(seeded, "/Patient/p1/*", ("_sort", "_id"))
    assert entries(bundle) == [
        "Condition/c1",
        "Encounter/e1",
        "Observation/o-bp",
        "Observation/o-glu1",
        "Patient/p1",
    ]
    bundle = await get(seeded, "/Patient/p1/Patient")
    assert entries(bundle) == ["Patient/p1"]


async def test_system_search(seeded: httpx.AsyncClient) -> None:
    bundle = await get(seeded, "/", ("_id", "p1,o-bp,org1"), ("_sort", "_id"))
    assert entries(bundle) == ["Observation/o-bp", "Organization/org1", "Patient/p1"]
    bundle = await get(seeded, "", ("_type", "Patient,Observation"), ("_tag", "urn:phix:src|his"))
    assert entries(bundle) == ["Patient/p1"]
    bundle = await get(seeded, "/", ("_type", "Patient,Practitioner"), ("name", "林"))
    assert entries(bundle) == ["Practitioner/d1"]
    check_outcome(await seeded.get("/", params={"code": "x"}), 400, "not-supported", "'code'")


async def test_post_search(seeded: httpx.AsyncClient) -> None:
    response = await seeded.post("/Patient/_search", data={"family": "陈"}, params={"_count": "5"})
    assert response.status_code == 200, response.text
    assert entries(response.json()) == ["Patient/p1"]
    response = await seeded.post("/_search", data={"_id": "c1"})
    assert entries(response.json()) == ["Condition/c1"]
    response = await seeded.post(
        "/Patient/_search", content=b'{"a": 1}', headers={"content-type": "application/json"}
    )
    check_outcome(response, 415, "not-supported", "application/x-www-form-urlencoded")


async def test_unknown_parameters_strict_and_lenient(seeded: httpx.AsyncClient) -> None:
    check_outcome(await seeded.get("/Patient", params={"foo": "1"}), 400, "not-supported", "'foo'")
    check_outcome(
        await seeded.get("/Patient", params={"family:below": "x"}), 400, "not-supported", "family:below"
    )
    bundle = await get(
        seeded, "/Patient", ("foo", "1"), ("family", "陈"), headers={"Prefer": "handling=lenient"}
    )
    assert entries(bundle) == ["Patient/p1"]
    assert link(bundle, "self") == "http://phix.test/fhir/Patient?family=%E9%99%88"


@pytest.mark.parametrize(
    ("params", "code", "text"),
    [
        ({"date": "yesterday"}, "invalid", "not a FHIR date"),
        ({"_count": "-1"}, "invalid", "_count"),
        ({"status:missing": "maybe"}, "invalid", "true or false"),
        ({"value-quantity": "5|mg"}, "invalid", "number|system|code"),
        ({"subject.foo": "x"}, "not-supported", "subject.foo"),
        ({"_sort": "component-code-value-quantity"}, "invalid", "composite"),
        ({"_include": "Nope:subject"}, "invalid", "Nope"),
        ({"component-code-value-quantity": "8480-6"}, "invalid", "2 '$'-separated"),
    ],
)
async def test_bad_values_are_400s(
    seeded: httpx.AsyncClient, params: dict[str, str], code: str, text: str
) -> None:
    check_outcome(await seeded.get("/Observation", params=params), 400, code, text)


async def test_unknown_type(seeded: httpx.AsyncClient) -> None:
    response = await seeded.get("/Nope", params={"x": "1"})
    assert response.status_code == 404


async def test_conditional_create_uses_the_finder(seeded: httpx.AsyncClient) -> None:
    body = {"resourceType": "Patient", "name": [{"family": "陈"}]}
    headers = {
        "If-None-Exist": "identifier=https://fhir.putian.gov.cn/NamingSystem/resident-id|35030219900101123X"
    }
    response = await seeded.post("/Patient", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "p1"
