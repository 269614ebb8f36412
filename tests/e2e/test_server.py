"""The FHIR API through a real uvicorn process on a socket, as a client sees it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest


@pytest.fixture
def http(shared_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.base_url, timeout=10) as client:
        yield client


def test_crud_over_a_socket(shared_server: Any, http: httpx.Client) -> None:
    base = shared_server.base_url
    metadata = http.get("/metadata")
    assert metadata.status_code == 200
    assert metadata.json()["fhirVersion"] == "4.3.0"
    assert metadata.json()["implementation"]["url"] == base

    body = {"resourceType": "Patient", "name": [{"family": "蔡", "given": ["雅婷"]}], "gender": "female"}
    created = http.post("/Patient", json=body, headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 201
    res_id = created.json()["id"]
    assert created.headers["location"] == f"{base}/Patient/{res_id}/_history/1"
    assert created.headers["etag"] == 'W/"1"'
    assert created.headers["content-type"] == "application/fhir+json; charset=utf-8"
    assert http.get(f"/Patient/{res_id}").content == created.content

    updated = http.put(
        f"/Patient/{res_id}", json={**body, "id": res_id, "active": True}, headers={"If-Match": 'W/"1"'}
    )
    assert updated.status_code == 200 and updated.headers["etag"] == 'W/"2"'
    stale = http.put(f"/Patient/{res_id}", json={**body, "id": res_id}, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    patched = http.patch(
        f"/Patient/{res_id}",
        content=b'[{"op": "replace", "path": "/active", "value": false}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert http.get(f"/Patient/{res_id}", headers={"If-None-Match": 'W/"3"'}).status_code == 304
    assert http.delete(f"/Patient/{res_id}").status_code == 204
    gone = http.get(f"/Patient/{res_id}")
    assert gone.status_code == 410 and gone.json()["resourceType"] == "OperationOutcome"
    history = http.get(f"/Patient/{res_id}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PATCH", "PUT", "POST"]
    assert http.get(f"/Patient/{res_id}/_history/1").content == created.content


def test_errors_over_a_socket(http: httpx.Client) -> None:
    xml = http.get("/metadata", headers={"Accept": "application/fhir+xml"})
    assert xml.status_code == 406 and xml.json()["resourceType"] == "OperationOutcome"
    unsupported = http.post(
        "/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert unsupported.status_code == 415
    broken = http.post("/Patient", content=b"{", headers={"Content-Type": "application/fhir+json"})
    assert broken.status_code == 400 and broken.json()["issue"][0]["code"] == "structure"
    invalid = http.post("/Patient", json={"resourceType": "Patient", "active": "true"})
    assert invalid.status_code == 422 and invalid.json()["issue"][0]["expression"] == ["Patient.active"]
    nowhere = http.get(http.base_url.copy_with(path="/nowhere"))
    assert nowhere.status_code == 404 and nowhere.json()["resourceType"] == "OperationOutcome"
    assert http.post("/Patient/1/_history/1").status_code == 405


def test_health_and_request_id_in_the_logs(shared_server: Any, http: httpx.Client) -> None:
    root = http.base_url.copy_with(path="/")
    assert http.get(root.join("/healthz")).json() == {"status": "ok"}
    assert http.get(root.join("/readyz")).json() == {"status": "ready"}
    generated = http.get("/metadata").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    response = http.post("/Patient", json={"resourceType": "Patient"}, headers={"X-Request-Id": "e2e-log-7"})
    assert response.headers["x-request-id"] == "e2e-log-7"
    deadline = time.monotonic() + 5
    while True:
        lines = shared_server.json_lines()
        mine = [line for line in lines if line.get("request_id") == "e2e-log-7"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(m["logger"], m["method"], m["path"], m["status"]) for m in mine] == [
        ("phix.access", "POST", "/fhir/Patient", 201)
    ]
    assert any(line.get("request_id") == generated for line in lines)
    assert all({"ts", "level", "logger", "msg", "request_id"} <= set(line) for line in lines)


def test_concurrent_clients(http: httpx.Client, shared_server: Any) -> None:
    def work(n: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=shared_server.base_url, timeout=10) as client:
            for i in range(5):
                created = client.post(
                    "/Observation",
                    json={
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"text": f"glucose {n}-{i}"},
                    },
                )
                statuses.append(created.status_code)
                res_id = created.json()["id"]
                statuses.append(client.get(f"/Observation/{res_id}").status_code)
        return statuses

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(work, range(6)))
    assert all(s == [201, 200] * 5 for s in results)
    page = http.get("/Observation/_history", params={"_count": "1000"}).json()
    assert len(page["entry"]) >= 30
    bodies = [orjson.dumps(e["resource"]) for e in page["entry"]]
    assert len(set(bodies)) == len(bodies)
