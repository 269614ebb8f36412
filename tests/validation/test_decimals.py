"""A decimal's digits are significant in FHIR: ``1.50`` stays ``1.50`` on every path in and out."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phix.fhir import fhirjson

BIG = "12345678901234567890.123456789"


def observation_json(value: str = "1.50", big: str = BIG) -> bytes:
    """An Observation as a client would send it, with decimals written as text."""
    return (
        '{"resourceType":"Observation","status":"final","code":{"text":"血红蛋白"},'
        '"valueQuantity":{"value":' + value + ',"unit":"g/dL","system":"http://unitsofmeasure.org",'
        '"code":"g/dL"},"component":[{"code":{"text":"big"},"valueQuantity":{"value":' + big + "}}],"
        '"referenceRange":[{"low":{"value":0.0},"high":{"value":1e2}}]}'
    ).encode()


def decimals_in(body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(body, parse_float=Decimal)
    return parsed


def assert_decimals(resource: dict[str, Any], value: str = "1.50") -> None:
    assert str(resource["valueQuantity"]["value"]) == value
    assert str(resource["component"][0]["valueQuantity"]["value"]) == BIG
    assert str(resource["referenceRange"][0]["low"]["value"]) == "0.0"
    assert resource["referenceRange"][0]["high"]["value"] == Decimal("1E+2")


# -- the JSON helpers ------------------------------------------------------------------------------

NUMBERS = st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)


@given(NUMBERS)
@settings(max_examples=400, deadline=None)
def test_any_json_number_keeps_its_value_and_digits(text: str) -> None:
    raw = f'{{"v":[{text}],"w":{{"x": {text} }}}}'.encode()
    want = Decimal(text)
    if abs(float(text)) == float("inf"):  # beyond a double: orjson refuses the document, so do we
        with pytest.raises(fhirjson.JSONDecodeError):
            fhirjson.loads(raw)
        return
    out = fhirjson.dumps(fhirjson.loads(raw))
    orjson.loads(out)  # valid JSON
    again = json.loads(out, parse_float=Decimal, parse_int=Decimal)
    for got in (again["v"][0], again["w"]["x"]):
        assert got == want
        if text != "-0":  # (an integer -0 is read as 0)
            assert got.as_tuple() == want.as_tuple(), (text, out)


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("1.50", "1.50"),
        ("72.5", "72.5"),
        ("100.0", "100.0"),
        ("0.0000001", "0.0000001"),
        ("1e-7", "1e-7"),  # orjson writes this float back as sent
        ("1.0e-7", "0.00000010"),
        ("1.5e3", "1.5E+3"),
        ("1e2", "1E+2"),
        ("-0.0", "-0.0"),
        ("-0.00", "-0.00"),
        (BIG, BIG),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("9007199254740993", "9007199254740993"),
        ("1E-400", "1E-400"),
    ],
)
def test_decimal_text(text: str, written: str) -> None:
    parsed = fhirjson.loads(f'{{"a": {text}}}')
    assert fhirjson.dumps(parsed) == f'{{"a":{written}}}'.encode()
    assert fhirjson.dumps(parsed, pretty=True) == f'{{\n  "a": {written}\n}}'.encode()


def test_lossless_numbers_stay_on_the_orjson_path() -> None:
    assert type(fhirjson.loads(b'{"a": 72.5, "b": 3, "c": "1.50"}')["a"]) is float
    assert type(fhirjson.loads(b'{"a":1.50}')["a"]) is Decimal
    assert fhirjson.loads(b'{"a":"x: 1.50"}') == {"a": "x: 1.50"}  # a number-like string


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1.50',
        b'\xef\xbb\xbf{"a": 1.50}',
        b'{"a": "\\ud800", "b": 1.50}',
    ],
)
def test_what_orjson_refuses_is_refused(raw: bytes) -> None:
    with pytest.raises(fhirjson.JSONDecodeError):
        fhirjson.loads(raw)


@pytest.mark.parametrize("depth", [255, 1000])
def test_nesting_that_cannot_be_written_back_is_refused(depth: int) -> None:
    for number in (b"1", b"1.50"):
        with pytest.raises(fhirjson.JSONDecodeError, match="nested too deeply"):
            fhirjson.loads(b"[" * depth + number + b"]" * depth)
    assert fhirjson.loads(b"[" * 254 + b"1.50" + b"]" * 254)  # what orjson writes, loads reads


# -- through the API -------------------------------------------------------------------------------

HEADERS = {"Content-Type": "application/fhir+json"}


async def _create(api: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    created = await api.post("/Observation", content=observation_json(), headers=HEADERS)
    assert created.status_code == 201, created.text
    return created.json()["id"], created


async def test_create_read_vread_history_pretty(api: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    res_id, created = await _create(api)
    assert b'"value":1.50' in created.content and BIG.encode() in created.content
    assert_decimals(decimals_in(created.content))
    stored = await db.fetchval("SELECT body FROM resources WHERE res_id = $1", res_id)
    assert stored == created.content
    versions = await db.fetch("SELECT body FROM resource_versions WHERE res_id = $1", res_id)
    assert [v["body"] for v in versions] == [created.content]

    read = await api.get(f"/Observation/{res_id}")
    assert read.content == created.content
    vread = await api.get(f"/Observation/{res_id}/_history/1")
    assert vread.content == created.content
    history = await api.get(f"/Observation/{res_id}/_history")
    assert_decimals(decimals_in(history.content)["entry"][0]["resource"])
    pretty = await api.get(f"/Observation/{res_id}", params={"_pretty": "true"})
    assert b'"value": 1.50' in pretty.content and f'"value": {BIG}'.encode() in pretty.content
    assert decimals_in(pretty.content) == decimals_in(created.content)
    pretty_history = await api.get(f"/Observation/{res_id}/_history", params={"_pretty": "true"})
    assert_decimals(decimals_in(pretty_history.content)["entry"][0]["resource"])


async def test_update_keeps_the_digits(api: httpx.AsyncClient) -> None:
    res_id, _ = await _create(api)
    body = observation_json("2.500").replace(
        b'{"resourceType":"Observation",', f'{{"resourceType":"Observation","id":"{res_id}",'.encode()
    )
    updated = await api.put(f"/Observation/{res_id}", content=body, headers=HEADERS)
    assert updated.status_code == 200, updated.text
    assert_decimals(decimals_in(updated.content), "2.500")


async def test_search_finds_by_value_and_answers_the_stored_digits(api: httpx.AsyncClient) -> None:
    res_id, _ = await _create(api)
    for query in ("1.50", "1.5", "1.50|http://unitsofmeasure.org|g/dL", "ge1.50"):
        found = await api.get("/Observation", params={"value-quantity": query, "_id": res_id})
        assert found.status_code == 200, found.text
        entries = decimals_in(found.content)["entry"]
        assert [e["resource"]["id"] for e in entries] == [res_id], query
        assert_decimals(entries[0]["resource"])
        assert b'"value":1.50' in found.content
    missed = await api.get("/Observation", params={"value-quantity": "1.51", "_id": res_id})
    assert decimals_in(missed.content).get("entry", []) == []
    # (eq on all 29 digits of BIG is not found: the search parser's arithmetic rounds to 28 digits)
    big = await api.get(
        "/Observation", params={"component-value-quantity": "ge12345678901234567890.1234", "_id": res_id}
    )
    assert [e["resource"]["id"] for e in decimals_in(big.content)["entry"]] == [res_id]
    # a subset (_elements) is made from the parsed body: the digits survive that too
    subset = await api.get("/Observation", params={"_id": res_id, "_elements": "valueQuantity"})
    resource = decimals_in(subset.content)["entry"][0]["resource"]
    assert str(resource["valueQuantity"]["value"]) == "1.50"
    pretty = await api.get("/Observation", params={"_id": res_id, "_pretty": "true"})
    assert_decimals(decimals_in(pretty.content)["entry"][0]["resource"])


async def test_patch_keeps_untouched_digits_and_takes_new_ones(api: httpx.AsyncClient) -> None:
    res_id, _ = await _create(api)
    patch = (
        b'[{"op":"test","path":"/valueQuantity/value","value":1.50},'
        b'{"op":"replace","path":"/valueQuantity/value","value":2.50}]'
    )
    patched = await api.patch(
        f"/Observation/{res_id}", content=patch, headers={"Content-Type": "application/json-patch+json"}
    )
    assert patched.status_code == 200, patched.text
    assert_decimals(decimals_in(patched.content), "2.50")
    assert b'"value":2.50' in patched.content


async def test_transaction_entries_and_patches_keep_digits(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    resource = observation_json().decode()
    patch = base64.b64encode(b'[{"op":"replace","path":"/valueQuantity/value","value":3.750}]').decode()
    res_id, _ = await _create(api)
    bundle = (
        '{"resourceType":"Bundle","type":"transaction","entry":['
        '{"fullUrl":"urn:uuid:5b0f4a52-1f7a-4a8e-9d1c-2f6a7b8c9d0e","resource":' + resource + ","
        '"request":{"method":"POST","url":"Observation"}},'
        '{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"'
        + patch
        + '"},'
        '"request":{"method":"PATCH","url":"Observation/' + res_id + '"}}]}'
    )
    response = await api.post(
        "", content=bundle.encode(), headers={**HEADERS, "Prefer": "return=representation"}
    )
    assert response.status_code == 200, response.text
    entries = decimals_in(response.content)["entry"]
    assert_decimals(entries[0]["resource"])
    assert_decimals(entries[1]["resource"], "3.750")
    new_id = entries[0]["response"]["location"].split("/")[1]
    stored = await db.fetchval("SELECT body FROM resources WHERE res_id = $1", new_id)
    assert_decimals(decimals_in(stored))
    # a JSON Patch given as a JSON array in the bundle keeps its digits too
    bundle_array = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": [
                    {"op": "replace", "path": "/valueQuantity/value", "value": orjson.Fragment(b"4.10")}
                ],
                "request": {"method": "PATCH", "url": f"Observation/{res_id}"},
            }
        ],
    }
    response = await api.post(
        "", content=orjson.dumps(bundle_array), headers={**HEADERS, "Prefer": "return=representation"}
    )
    assert response.status_code == 200, response.text
    assert_decimals(decimals_in(response.content)["entry"][0]["resource"], "4.10")
