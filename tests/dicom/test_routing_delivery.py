"""Routing to reading sites: contracts, priorities, C-STORE and REST delivery, de-identification,
a site that is down, exactly-once delivery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from phix.identity.systems import accession_system

pytestmark = [pytest.mark.usefixtures("clean_sites")]

ROUTING_WITH_STAT = """
  - name: stat-second-reader
    when: {{priorities: [stat]}}
    send_to: [ptxyfsyy]
"""


@pytest.fixture
def rules(tmp_path: Path, sites: dict[str, Any], kit: Any) -> Path:
    text = kit.ROUTING + ROUTING_WITH_STAT
    ports = sites["ptsdyyy"].http_port, sites["ptxyfsyy"].dicom_port
    return kit.write_routing(tmp_path / "routing.yaml", *ports, text=text)


async def _put(gw: Any, resource: dict[str, Any]) -> None:
    response = await gw.client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text


async def _contract(gw: Any, grassroots: str, specialist: str) -> None:
    for code in (grassroots, specialist):
        await _put(gw, {"resourceType": "Organization", "id": f"org-{code}", "name": code})
    await _put(
        gw,
        {
            "resourceType": "OrganizationAffiliation",
            "id": f"aff-{grassroots}-{specialist}",
            "active": True,
            "period": {"start": "2020-01-01"},
            "organization": {"reference": f"Organization/org-{specialist}"},
            "participatingOrganization": {"reference": f"Organization/org-{grassroots}"},
            "code": [
                {
                    "coding": [
                        {
                            "system": "https://fhir.putian.gov.cn/CodeSystem/affiliation-role",
                            "code": "teleradiology",
                        }
                    ]
                }
            ],
        },
    )


async def _routes(gw: Any, uid: str) -> dict[str, dict[str, Any]]:
    await gw.drain()
    info = await gw.study(uid)
    return {r["destination"]: r for r in info.get("routes", [])} if info.get("state") == "complete" else {}


async def test_contract_and_order_priority_choose_the_sites(
    start_gateway: Any, rules: Path, kit: Any, tmp_path: Path, sites: dict[str, Any]
) -> None:
    contracted = kit.make_study(tmp_path / "a", 2, modality="DX", accession="ACC-1")
    urgent = kit.make_study(tmp_path / "b", 2, modality="DX", accession="ACC-9")
    async with start_gateway(rules) as gw:
        # no contract yet: the grassroots study is complete but goes nowhere
        code, out = await kit.storescu(gw.port, "XTW_DX", *contracted.paths)
        assert code == 0, out
        info = await kit.eventually(lambda: _complete(gw, contracted.uid))
        assert info["routes"] == []

        await _contract(gw, "xtwzwsy", "ptsdyyy")
        await _put(gw, {"resourceType": "Patient", "id": "p1"})
        await _put(
            gw,
            {
                "resourceType": "ServiceRequest",
                "id": "sr-acc-9",
                "status": "active",
                "intent": "order",
                "priority": "stat",
                "subject": {"reference": "Patient/p1"},
                "identifier": [{"system": accession_system("xtwzwsy"), "value": "ACC-9"}],
            },
        )
        code, out = await kit.storescu(gw.port, "XTW_DX", *urgent.paths)
        assert code == 0, out
        routes = await kit.eventually(lambda: _routes(gw, urgent.uid))
        assert {name: r["rule"] for name, r in routes.items()} == {
            "ptsdyyy": "grassroots-teleradiology",
            "ptxyfsyy": "stat-second-reader",
        }
        assert {r["priority"] for r in routes.values()} == {0}  # stat first in the queue
        await kit.eventually(lambda: gw.delivered(urgent.uid, "ptsdyyy"))
        await kit.eventually(lambda: gw.delivered(urgent.uid, "ptxyfsyy"))
        assert len(sites["ptsdyyy"].study_instances(urgent.uid)) == 2
        assert len(sites["ptxyfsyy"].study_instances(urgent.uid)) == 2


async def _complete(gw: Any, uid: str) -> dict[str, Any] | None:
    await gw.drain()
    info: dict[str, Any] = await gw.study(uid)
    return info if info.get("state") == "complete" else None


async def test_cstore_route_deidentifies_consistently(
    start_gateway: Any, rules: Path, kit: Any, tmp_path: Path, sites: dict[str, Any]
) -> None:
    study = kit.make_study(tmp_path / "s", 3, modality="MR", patient_id="XY-1", patient_name="Lin^Fang=林^芳")
    site = sites["ptxyfsyy"]
    async with start_gateway(rules) as gw:
        code, out = await kit.storescu(gw.port, "XYX_MR", *study.paths)
        assert code == 0, out
        await kit.eventually(lambda: gw.delivered(study.uid, "ptxyfsyy"))
        assert sites["ptsdyyy"].instance_count() == 0
        assert site.study_instances(study.uid) == []  # the site only knows the pseudonymous UIDs
        instances = site.get("/instances?expand")
        assert len(instances) == 3
        tags = site.get(f"/instances/{instances[0]['ID']}/simplified-tags")
        assert tags["PatientName"].startswith("ANON^") and "林" not in tags["PatientName"]
        assert tags["PatientID"].startswith("ANON-") and tags["PatientID"] != "XY-1"
        assert tags["PatientIdentityRemoved"] == "YES"
        assert tags["StudyInstanceUID"].startswith("2.25.") and tags["StudyInstanceUID"] != study.uid
        assert tags["StudyDate"] == "20240315"  # full dates retained (longitudinal option)
        assert "InstitutionName" not in tags

        # the study sent again (a new route job, nothing new to send) and a forced re-delivery of
        # everything: the same pseudonyms, so the site still holds 3 instances, each stored once
        code, out = await kit.storescu(gw.port, "XYX_MR", *study.paths)
        assert code == 0, out
        await kit.eventually(lambda: _complete(gw, study.uid))
        await kit.eventually(lambda: gw.delivered(study.uid, "ptxyfsyy"))
        conn = await asyncpg.connect(gw.app.state.settings.database_url)
        try:
            await conn.execute("DELETE FROM dicom_deliveries")
            route = await conn.fetchval("SELECT id FROM dicom_routes WHERE destination = 'ptxyfsyy'")
            await conn.execute("UPDATE dicom_routes SET status = 'failed' WHERE id = $1", route)
        finally:
            await conn.close()
        retried = await gw.client.post(f"/dicom/routes/{route}/retry")
        assert retried.status_code == 200, retried.text
        await kit.eventually(lambda: gw.delivered(study.uid, "ptxyfsyy"))
        assert site.instance_count() == 3
        assert site.new_instance_events() == 3


async def test_site_down_queued_then_delivered_exactly_once(
    start_gateway: Any, kit: Any, tmp_path: Path, sites: dict[str, Any]
) -> None:
    down = kit.OrthancSite("late", "LATE", tmp_path / "late")  # ports chosen, not started yet
    rules = kit.write_routing(tmp_path / "routing.yaml", down.http_port, sites["ptxyfsyy"].dicom_port)
    study = kit.make_study(tmp_path / "s", 5, modality="CT")
    async with start_gateway(rules) as gw:
        try:
            code, out = await kit.storescu(gw.port, "XYX_CT", *study.paths)
            assert code == 0, out

            async def waiting() -> dict[str, Any] | None:
                routes = await _routes(gw, study.uid)
                job = routes.get("ptsdyyy")
                return job if job and job["status"] == "pending" and job["attempts"] >= 2 else None

            job = await kit.eventually(waiting, timeout=30)
            assert "cannot connect" in job["last_error"]
            summary = (await gw.client.get("/dicom/destinations")).json()
            assert summary[0]["destination"] == "ptsdyyy" and summary[0]["pending"] == 1
            assert "cannot connect" in summary[0]["last_error"]

            down.start()
            await kit.eventually(lambda: gw.delivered(study.uid, "ptsdyyy"), timeout=30)
            assert down.instance_count() == 5
            assert down.new_instance_events() == 5
            conn = await asyncpg.connect(gw.app.state.settings.database_url)
            try:
                sent = await conn.fetchval(
                    "SELECT count(*) FROM dicom_deliveries WHERE destination = 'ptsdyyy'"
                )
            finally:
                await conn.close()
            assert sent == 5
        finally:
            down.stop()
