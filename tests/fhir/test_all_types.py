"""Every R4B resource type goes through create, read, vread, update, patch, delete and history."""

from __future__ import annotations

from typing import Any

import httpx

from phix.fhir.resource_types import RESOURCE_TYPES


def test_resource_types_are_exactly_those_of_r4b() -> None:
    from fhir.resources.R4B import fhirtypes
    from fhir.resources.R4B.resource import Resource

    concrete = set()
    for name in dir(fhirtypes):
        marker = getattr(fhirtypes, name)
        if not name.endswith("Type") or not hasattr(marker, "get_model_klass"):
            continue
        try:
            cls = marker.get_model_klass()
        except Exception:
            continue
        if isinstance(cls, type) and issubclass(cls, Resource):
            concrete.add(cls.__name__)
    concrete -= {"Resource", "DomainResource"}
    assert concrete == RESOURCE_TYPES
    assert len(RESOURCE_TYPES) == 141


async def test_every_resource_type_round_trips(client: httpx.AsyncClient, minimal: Any) -> None:
    failures: list[str] = []
    for res_type in sorted(RESOURCE_TYPES):
        resource = minimal(res_type)
        created = await client.post(f"/{res_type}", json=resource)
        if created.status_code != 201:
            failures.append(f"{res_type} create {created.status_code} {created.text[:200]}")
            continue
        res_id = created.json()["id"]
        read = await client.get(f"/{res_type}/{res_id}")
        if read.status_code != 200 or read.content != created.content:
            failures.append(f"{res_type} read {read.status_code}")
        updated = await client.put(f"/{res_type}/{res_id}", json={**resource, "id": res_id})
        if updated.status_code != 200 or updated.headers.get("etag") != 'W/"2"':
            failures.append(f"{res_type} update {updated.status_code} {updated.text[:200]}")
        patched = await client.patch(
            f"/{res_type}/{res_id}",
            content=b'[{"op": "add", "path": "/language", "value": "zh-CN"}]',
            headers={"Content-Type": "application/json-patch+json"},
        )
        if patched.status_code != 200 or patched.json().get("language") != "zh-CN":
            failures.append(f"{res_type} patch {patched.status_code} {patched.text[:200]}")
        vread = await client.get(f"/{res_type}/{res_id}/_history/1")
        if vread.content != created.content:
            failures.append(f"{res_type} vread {vread.status_code}")
        deleted = await client.delete(f"/{res_type}/{res_id}")
        gone = await client.get(f"/{res_type}/{res_id}")
        if deleted.status_code != 204 or gone.status_code != 410:
            failures.append(f"{res_type} delete {deleted.status_code} then read {gone.status_code}")
        history = await client.get(f"/{res_type}/_history")
        if (
            history.status_code != 200
            or history.json().get("entry", [{}])[0].get("request", {}).get("method") != "DELETE"
        ):
            failures.append(f"{res_type} type history {history.status_code}")
    assert failures == []
    system = (await client.get("/_history", params={"_count": "1000"})).json()
    assert len(system["entry"]) == 4 * len(RESOURCE_TYPES)  # create, update, patch, delete
    assert {e["fullUrl"].split("/")[-2] for e in system["entry"]} == RESOURCE_TYPES
