"""``GET [base]/metadata``: the CapabilityStatement says what the server really does."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from phix.fhir.resource_types import RESOURCE_TYPES

_BUNDLE = {"resourceType": "Bundle", "entry": []}

# interaction code -> a request that exercises it (on a database holding nothing)
TYPE_PROBES: dict[str, tuple[str, str, Any]] = {
    "read": ("GET", "/Patient/probe", None),
    "vread": ("GET", "/Patient/probe/_history/1", None),
    "update": ("PUT", "/Patient/probe", {"resourceType": "Patient", "id": "probe"}),
    "patch": ("PATCH", "/Patient/probe", []),
    "delete": ("DELETE", "/Patient/probe", None),
    "history-instance": ("GET", "/Patient/probe/_history", None),
    "history-type": ("GET", "/Patient/_history", None),
    "create": ("POST", "/Patient", {"resourceType": "Patient"}),
    "search-type": ("GET", "/Patient?_id=probe", None),
}
SYSTEM_PROBES: dict[str, tuple[str, str, Any]] = {
    "transaction": ("POST", "", {**_BUNDLE, "type": "transaction"}),
    "batch": ("POST", "", {**_BUNDLE, "type": "batch"}),
    "search-system": ("GET", "?_id=probe", None),
    "history-system": ("GET", "/_history", None),
}


async def _answers(client: httpx.AsyncClient, method: str, url: str, body: Any) -> bool:
    """True when some route handles the request (whatever its outcome), False for 404/405 routing."""
    headers = {"Content-Type": "application/json-patch+json"} if method == "PATCH" else {}
    content = None if body is None else orjson.dumps(body)
    response = await client.request(method, url, content=content, headers=headers)
    if response.status_code == 405:
        return False
    if response.status_code == 404:
        return "No route for" not in response.json()["issue"][0]["diagnostics"]
    return True


def _codes(items: list[dict[str, str]]) -> set[str]:
    return {item["code"] for item in items}


async def test_capability_statement(client: httpx.AsyncClient, app: FastAPI) -> None:
    response = await client.get("/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.3.0"
    assert statement["kind"] == "instance"
    assert statement["status"] == "active"
    assert "application/fhir+json" in statement["format"]
    assert "application/xml" not in statement["format"] and "xml" not in statement["format"]
    assert statement["patchFormat"] == ["application/json-patch+json"]
    assert statement["implementation"]["url"] == "http://phix.test/fhir"
    [rest] = statement["rest"]
    assert rest["mode"] == "server"
    types = [entry["type"] for entry in rest["resource"]]
    assert sorted(types) == sorted(RESOURCE_TYPES)
    assert len(types) == len(set(types)) == 141
    # the same interactions for every type
    first = _codes(rest["resource"][0]["interaction"])
    assert all(_codes(entry["interaction"]) == first for entry in rest["resource"])
    for entry in rest["resource"]:
        assert entry["versioning"] == "versioned-update"
        assert entry["readHistory"] is True
        assert entry["updateCreate"] is True
    # the core interactions of this issue are always there
    assert {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
    } <= first
    assert "history-system" in _codes(rest["interaction"])


async def test_listed_interactions_are_exactly_those_mounted(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    [rest] = statement["rest"]
    patient = next(entry for entry in rest["resource"] if entry["type"] == "Patient")
    mounted_type = {code for code, probe in TYPE_PROBES.items() if await _answers(client, *probe)}
    mounted_system = {code for code, probe in SYSTEM_PROBES.items() if await _answers(client, *probe)}
    assert _codes(patient["interaction"]) == mounted_type
    assert _codes(rest["interaction"]) == mounted_system


async def test_conditional_flags_match_behaviour(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    patient = next(entry for entry in statement["rest"][0]["resource"] if entry["type"] == "Patient")
    assert patient["conditionalRead"] == "full-support"  # If-None-Match / If-Modified-Since
    # conditional update and delete are routes on [base]/[type]?criteria
    update_routed = await _answers(client, "PUT", "/Patient?_id=x", {"resourceType": "Patient"})
    assert patient["conditionalUpdate"] is update_routed
    delete_routed = await _answers(client, "DELETE", "/Patient?_id=x", None)
    assert (patient["conditionalDelete"] != "not-supported") is delete_routed
    # conditional create is the If-None-Exist header on create: honoured iff announced
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "cc-1"}]}
    headers = {"If-None-Exist": "identifier=urn:test|cc-1"}
    first = await client.post("/Patient", json=body, headers=headers)
    second = await client.post("/Patient", json=body, headers=headers)
    assert first.status_code == 201
    honoured = second.status_code == 200 and second.json()["id"] == first.json()["id"]
    assert patient["conditionalCreate"] is honoured


async def test_metadata_refuses_xml_and_other_methods(client: httpx.AsyncClient, outcome: Any) -> None:
    outcome(await client.get("/metadata", params={"_format": "xml"}), 406, {"code": "not-supported"})
    outcome(
        await client.get("/metadata", headers={"Accept": "application/fhir+xml"}),
        406,
        {"code": "not-supported"},
    )
    pretty = await client.get("/metadata", params={"_pretty": "true"})
    assert pretty.content.startswith(b'{\n  "resourceType": "CapabilityStatement"')
