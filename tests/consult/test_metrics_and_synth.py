"""Prometheus metrics at /metrics, the CapabilityStatement, and consults over the synthetic network."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from phix.fhir.integrity import deferred_references
from phix.fhir.references import check_targets_exist
from phix.storage.context import RequestContext
from phix.storage.repository import Repository

from .world import Clock, consult_request, report, task_of


async def test_metrics_endpoint(capp: FastAPI, cclient: httpx.AsyncClient, clock: Clock) -> None:
    sr = (await cclient.post("/ServiceRequest", json=consult_request("stat"))).json()
    task_id = task_of((await cclient.get("/$consult-timeliness")).json(), sr["id"])
    await cclient.post("/ServiceRequest", json=consult_request("routine"))
    await cclient.post(f"/Task/{task_id}/$accept")
    clock.advance(minutes=20)
    await cclient.post(f"/Task/{task_id}/$complete", json=report())
    clock.advance(hours=25)  # the routine one is now overdue

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=capp), base_url="http://phix.test"
    ) as root:
        response = await root.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    site = 'priority="stat",site="org-ptsdyyy"'
    assert f'phix_consult_turnaround_seconds_bucket{{le="900.0",{site}}} 0.0' in text
    assert f'phix_consult_turnaround_seconds_bucket{{le="1800.0",{site}}} 1.0' in text
    assert f'phix_consult_turnaround_seconds_bucket{{le="+Inf",{site}}} 1.0' in text
    assert f"phix_consult_turnaround_seconds_count{{{site}}} 1.0" in text
    assert f"phix_consult_turnaround_seconds_sum{{{site}}} 1200.0" in text
    assert 'phix_consult_open{site="org-ptsdyyy",status="requested"} 1.0' in text
    assert "# TYPE phix_consult_overdue gauge" in text
    assert 'phix_consult_overdue{reader="role-r' in text
    assert "# TYPE phix_consult_escalations_total counter" in text
    assert "process_cpu_seconds_total" in text


async def test_capability_statement_declares_the_operations(cclient: httpx.AsyncClient) -> None:
    statement = (await cclient.get("/metadata")).json()
    operations = {op["name"]: op["definition"] for op in statement["rest"][0]["operation"]}
    base = "https://fhir.putian.gov.cn/OperationDefinition"
    for name in ("accept", "start", "complete", "reject", "cancel", "reassign"):
        assert operations[name] == f"{base}/Task-{name}"
    assert operations["consult-timeliness"] == f"{base}/consult-timeliness"


async def test_timeliness_rejects_bad_parameters(cclient: httpx.AsyncClient) -> None:
    response = await cclient.get("/$consult-timeliness", params={"since": "yesterday"})
    assert response.status_code == 400
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": "since: 'yesterday' is not a FHIR date, dateTime or instant",
            }
        ],
    }
    unknown = await cclient.get("/$consult-timeliness", params={"sort": "x"})
    assert unknown.status_code == 400
    assert unknown.json()["issue"][0]["expression"] == ["sort"]


async def test_timeliness_filters(cclient: httpx.AsyncClient, clock: Clock) -> None:
    await cclient.post("/ServiceRequest", json=consult_request("stat"))
    clock.advance(minutes=1)
    await cclient.post("/ServiceRequest", json=consult_request("routine"))
    stat = (await cclient.get("/$consult-timeliness", params={"priority": "stat"})).json()
    assert len([p for p in stat["parameter"] if p["name"] == "consult"]) == 1
    later = (await cclient.get("/$consult-timeliness", params={"since": "2026-03-02T01:00:30Z"})).json()
    consults = [p for p in later["parameter"] if p["name"] == "consult"]
    assert len(consults) == 1
    assert {"name": "priority", "valueCode": "routine"} in consults[0]["part"]
    nobody = (await cclient.get("/$consult-timeliness", params={"site": "Organization/org-ptxyfsyy"})).json()
    assert [p for p in nobody["parameter"] if p["name"] == "consult"] == []


async def test_consult_over_the_synthetic_network(capp: FastAPI, clock: Clock) -> None:
    shared = pytest.importorskip("phix.synth.shared")
    institutions = pytest.importorskip("phix.synth.institutions")
    async with capp.state.db.pool.acquire() as conn, conn.transaction():
        repo = Repository(conn, RequestContext(), capp.state.listeners, clock)
        with deferred_references() as targets:  # Organization <-> Endpoint refer to each other
            for resource in shared.shared_resources():
                await repo.update(resource["resourceType"], resource["id"], resource)
        await check_targets_exist(conn, targets)
        await repo.update("Patient", "pat-1", {"resourceType": "Patient", "id": "pat-1"})
        await repo.update(
            "ImagingStudy",
            "study-1",
            {
                "resourceType": "ImagingStudy",
                "id": "study-1",
                "status": "available",
                "subject": {"reference": "Patient/pat-1"},
            },
        )
    township = institutions.by_code()["xtwzwsy"]
    specialist = institutions.specialist_for(township)
    radiologists = {f"PractitionerRole/role-{s.id}" for s in specialist.staff if s.specialty == "radiology"}
    gp = next(s for s in township.staff if s.specialty == "general-practice")
    transport = httpx.ASGITransport(app=capp)
    async with httpx.AsyncClient(transport=transport, base_url="http://phix.test/fhir") as client:
        owners = set()
        for _ in range(len(radiologists)):
            sr = (
                await client.post(
                    "/ServiceRequest", json=consult_request(requester=f"PractitionerRole/role-{gp.id}")
                )
            ).json()
            task_id = task_of((await client.get("/$consult-timeliness")).json(), sr["id"])
            task = (await client.get(f"/Task/{task_id}")).json()
            assert task["requester"] == {"reference": f"Organization/{township.org_id}"}
            owners.add(task["owner"]["reference"])
            clock.advance(seconds=1)
    assert owners == radiologists  # spread over every radiologist of the contracted specialist hospital
