"""The consult workflow end to end over the FHIR API: request -> Task -> report."""

from __future__ import annotations

import httpx

from .world import Clock, consult_request, parameters, report, task_of


async def _consult(client: httpx.AsyncClient, **kwargs: object) -> tuple[str, str]:
    created = await client.post("/ServiceRequest", json=consult_request(**kwargs))  # type: ignore[arg-type]
    assert created.status_code == 201, created.text
    sr_id = created.json()["id"]
    timeliness = (await client.get("/$consult-timeliness")).json()
    return sr_id, task_of(timeliness, sr_id)


async def test_consult_end_to_end(cclient: httpx.AsyncClient, clock: Clock) -> None:
    sr_id, task_id = await _consult(cclient, priority="urgent", authoredOn="2026-03-02T08:55:00+08:00")
    task = (await cclient.get(f"/Task/{task_id}")).json()
    assert task["status"] == "requested"
    assert task["intent"] == "order"
    assert task["priority"] == "urgent"
    assert task["basedOn"] == [{"reference": f"ServiceRequest/{sr_id}"}]
    assert task["focus"] == {"reference": "ImagingStudy/study-1"}
    assert task["for"] == {"reference": "Patient/pat-1"}
    assert task["requester"] == {"reference": "Organization/org-xtwzwsy"}
    assert task["owner"]["reference"] in {"PractitionerRole/role-r1", "PractitionerRole/role-r2"}
    assert task["restriction"]["period"] == {
        "start": "2026-03-02T01:00:00.000000Z",
        "end": "2026-03-02T03:00:00.000000Z",
    }
    assert task["businessStatus"]["coding"][0]["code"] == "assigned"
    assert task["reasonCode"] == {"text": "咳嗽两周，胸片可疑结节"}

    clock.advance(minutes=10)
    accepted = await cclient.post(f"/Task/{task_id}/$accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    clock.advance(minutes=5)
    started = await cclient.post(f"/Task/{task_id}/$start")
    assert started.json()["status"] == "in-progress"
    assert started.json()["executionPeriod"] == {"start": "2026-03-02T01:15:00.000000Z"}

    clock.advance(minutes=40)
    completed = await cclient.post(f"/Task/{task_id}/$complete", json=parameters(report=report()))
    assert completed.status_code == 200, completed.text
    done = completed.json()
    assert done["status"] == "completed"
    assert done["businessStatus"]["coding"][0]["code"] == "reported"
    assert done["executionPeriod"] == {
        "start": "2026-03-02T01:15:00.000000Z",
        "end": "2026-03-02T01:55:00.000000Z",
    }
    report_ref = done["output"][0]["valueReference"]["reference"]
    stored = (await cclient.get(f"/{report_ref}")).json()
    assert stored["status"] == "final"
    assert stored["basedOn"] == [{"reference": f"ServiceRequest/{sr_id}"}]
    assert stored["imagingStudy"] == [{"reference": "ImagingStudy/study-1"}]
    assert stored["resultsInterpreter"] == [task["owner"]]
    assert stored["subject"] == {"reference": "Patient/pat-1"}

    history = (await cclient.get(f"/Task/{task_id}/_history")).json()
    statuses = [e["resource"]["status"] for e in reversed(history["entry"])]
    assert statuses == ["requested", "accepted", "in-progress", "completed"]

    timeliness = (await cclient.get("/$consult-timeliness")).json()
    consult = next(p for p in timeliness["parameter"] if p["name"] == "consult")
    parts = {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in consult["part"]}
    # authored 00:55Z, completed 01:55Z: one hour; the deadline counted from receipt (01:00Z + 2 h)
    assert parts["turnaround"] == {
        "value": 3600.0,
        "unit": "s",
        "system": "http://unitsofmeasure.org",
        "code": "s",
    }
    assert parts["metDeadline"] is True
    assert parts["overdue"] is False
    assert parts["status"] == "completed"
    assert parts["report"] == {"reference": report_ref}


async def test_least_loaded_then_round_robin(cclient: httpx.AsyncClient, clock: Clock) -> None:
    owners = []
    for _ in range(4):
        _, task_id = await _consult(cclient)
        owners.append((await cclient.get(f"/Task/{task_id}")).json()["owner"]["reference"])
        clock.advance(seconds=1)
    # two readers with equal load alternate; the internist and the uncontracted site never read
    assert owners[0] != owners[1]
    assert owners[2] == owners[0] and owners[3] == owners[1]
    assert set(owners) == {"PractitionerRole/role-r1", "PractitionerRole/role-r2"}


async def test_least_loaded_prefers_the_reader_with_fewer_open_consults(
    cclient: httpx.AsyncClient, clock: Clock
) -> None:
    first = [await _consult(cclient) for _ in range(2)]
    tasks = [(await cclient.get(f"/Task/{t}")).json() for _, t in first]
    # the first reader finishes; the next two consults both go to the one with no open consult
    done = next(t for t in tasks if t["owner"]["reference"].endswith("role-r1"))
    await cclient.post(f"/Task/{done['id']}/$accept")
    await cclient.post(f"/Task/{done['id']}/$complete", json=report())
    clock.advance(seconds=1)
    _, nxt = await _consult(cclient)
    assert (await cclient.get(f"/Task/{nxt}")).json()["owner"]["reference"] == "PractitionerRole/role-r1"


async def test_complete_from_accepted_passes_through_in_progress(cclient: httpx.AsyncClient) -> None:
    _, task_id = await _consult(cclient)
    await cclient.post(f"/Task/{task_id}/$accept")
    body = report() | {"resultsInterpreter": [{"reference": "PractitionerRole/role-r2"}]}
    completed = await cclient.post(f"/Task/{task_id}/$complete", json=body)  # the report as the body
    assert completed.json()["status"] == "completed"
    history = (await cclient.get(f"/Task/{task_id}/_history")).json()
    assert [e["resource"]["status"] for e in reversed(history["entry"])] == [
        "requested",
        "accepted",
        "in-progress",
        "completed",
    ]


async def test_plain_diagnostic_report_completes_the_task(cclient: httpx.AsyncClient) -> None:
    sr_id, task_id = await _consult(cclient)
    await cclient.post(f"/Task/{task_id}/$accept")
    await cclient.post(f"/Task/{task_id}/$start")
    owner = (await cclient.get(f"/Task/{task_id}")).json()["owner"]
    created = await cclient.post(
        "/DiagnosticReport",
        json=report()
        | {
            "basedOn": [{"reference": f"ServiceRequest/{sr_id}"}],
            "imagingStudy": [{"reference": "ImagingStudy/study-1"}],
            "resultsInterpreter": [owner],
        },
    )
    assert created.status_code == 201, created.text
    task = (await cclient.get(f"/Task/{task_id}")).json()
    assert task["status"] == "completed"
    assert task["output"][0]["valueReference"] == {"reference": f"DiagnosticReport/{created.json()['id']}"}


async def test_reject_reassigns_to_the_other_reader(cclient: httpx.AsyncClient) -> None:
    _, task_id = await _consult(cclient)
    first = (await cclient.get(f"/Task/{task_id}")).json()["owner"]["reference"]
    rejected = await cclient.post(f"/Task/{task_id}/$reject", json=parameters(reason="本人休假 / on leave"))
    assert rejected.status_code == 200, rejected.text
    task = rejected.json()
    assert task["status"] == "requested"
    assert task["owner"]["reference"] != first
    assert task["businessStatus"]["coding"][0]["code"] == "reassigned"
    history = (await cclient.get(f"/Task/{task_id}/_history")).json()
    rejected_version = history["entry"][1]["resource"]
    assert rejected_version["status"] == "rejected"
    assert rejected_version["statusReason"] == {"text": "本人休假 / on leave"}
    # the second reader rejects too: nobody is left, the Task stays rejected
    again = await cclient.post(f"/Task/{task_id}/$reject", json=parameters(reason="busy"))
    assert again.json()["status"] == "rejected"
    assert again.json()["owner"]["reference"] == task["owner"]["reference"]


async def test_reassign_to_a_named_reader_and_refusal_of_an_uncontracted_one(
    cclient: httpx.AsyncClient,
) -> None:
    _, task_id = await _consult(cclient)
    current = (await cclient.get(f"/Task/{task_id}")).json()["owner"]["reference"].split("/")[1]
    other = "role-r2" if current == "role-r1" else "role-r1"
    await cclient.post(f"/Task/{task_id}/$accept")
    moved = await cclient.post(
        f"/Task/{task_id}/$reassign",
        json=parameters(owner={"reference": f"PractitionerRole/{other}"}, reason="专科会诊 / subspecialty"),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "requested"
    assert moved.json()["owner"] == {"reference": f"PractitionerRole/{other}"}
    refused = await cclient.post(
        f"/Task/{task_id}/$reassign", json=parameters(owner={"reference": "PractitionerRole/role-r3"})
    )
    assert refused.status_code == 409
    assert refused.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "business-rule",
                "diagnostics": "PractitionerRole/role-r3 is not an active reader at a site contracted with "
                "Organization/org-xtwzwsy",
                "expression": ["Parameters.parameter.where(name='owner')"],
            }
        ],
    }


async def test_revoking_the_request_cancels_the_task(cclient: httpx.AsyncClient) -> None:
    sr_id, task_id = await _consult(cclient)
    sr = (await cclient.get(f"/ServiceRequest/{sr_id}")).json()
    updated = await cclient.put(f"/ServiceRequest/{sr_id}", json=sr | {"status": "revoked"})
    assert updated.status_code == 200, updated.text
    task = (await cclient.get(f"/Task/{task_id}")).json()
    assert task["status"] == "cancelled"
    assert task["statusReason"] == {"text": "ServiceRequest revoked"}


async def test_draft_request_gets_its_task_when_activated(cclient: httpx.AsyncClient) -> None:
    created = await cclient.post("/ServiceRequest", json=consult_request(status="draft"))
    sr = created.json()
    timeliness = (await cclient.get("/$consult-timeliness")).json()
    assert not [p for p in timeliness["parameter"] if p["name"] == "consult"]
    await cclient.put(f"/ServiceRequest/{sr['id']}", json=sr | {"status": "active"})
    timeliness = (await cclient.get("/$consult-timeliness")).json()
    assert task_of(timeliness, sr["id"])


async def test_non_consult_requests_are_left_alone(cclient: httpx.AsyncClient) -> None:
    plain = consult_request()
    del plain["category"]
    created = await cclient.post("/ServiceRequest", json=plain)
    assert created.status_code == 201
    timeliness = (await cclient.get("/$consult-timeliness")).json()
    assert not [p for p in timeliness["parameter"] if p["name"] == "consult"]
