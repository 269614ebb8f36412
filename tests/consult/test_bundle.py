"""Consults inside transaction bundles: the Task is created in, and rolled back with, the bundle."""

from __future__ import annotations

import httpx

from .world import consult_request, task_of


async def test_consult_in_a_transaction_bundle(cclient: httpx.AsyncClient) -> None:
    study = {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": "Patient/pat-1"}}
    request = consult_request(
        "urgent", supportingInfo=[{"reference": "urn:uuid:6f1c0c1e-0000-4000-8000-000000000001"}]
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:6f1c0c1e-0000-4000-8000-000000000002",
                "resource": request,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {
                "fullUrl": "urn:uuid:6f1c0c1e-0000-4000-8000-000000000001",
                "resource": study,
                "request": {"method": "POST", "url": "ImagingStudy"},
            },
        ],
    }
    response = await cclient.post("", json=bundle)
    assert response.status_code == 200, response.text
    locations = [e["response"]["location"] for e in response.json()["entry"]]
    sr_id, study_id = locations[0].split("/")[1], locations[1].split("/")[1]
    task_id = task_of((await cclient.get("/$consult-timeliness")).json(), sr_id)
    task = (await cclient.get(f"/Task/{task_id}")).json()
    assert task["focus"] == {"reference": f"ImagingStudy/{study_id}"}
    assert task["owner"]["reference"].startswith("PractitionerRole/role-r")


async def test_a_failing_bundle_leaves_no_task(cclient: httpx.AsyncClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": consult_request(), "request": {"method": "POST", "url": "ServiceRequest"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": "Patient/missing"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = await cclient.post("", json=bundle)
    assert response.status_code == 409, response.text  # found at the end, after the SR and its Task
    timeliness = (await cclient.get("/$consult-timeliness")).json()
    assert [p for p in timeliness["parameter"] if p["name"] == "consult"] == []
    assert (await cclient.get("/Task/_history")).json().get("entry", []) == []
