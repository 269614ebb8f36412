"""A small teleconsultation network for the tests, a controllable clock and a local HTTP receiver.

Shapes follow ``phix.synth.shared`` (Organization, PractitionerRole, OrganizationAffiliation):

* ``org-xtwzwsy`` (township health centre, the requester) with GP ``role-gp``;
* ``org-ptsdyyy`` (specialist site) with radiologists ``role-r1``, ``role-r2`` and an internist
  ``role-im`` (not a reader), contracted with the requester (``aff-xtwzwsy-ptsdyyy``);
* ``org-ptxyfsyy`` (specialist site) with radiologist ``role-r3`` and **no** contract with the
  requester (until a test adds one);
* ``org-hszxwsy`` (a second grassroots centre) with no contract at all.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from phix.consult.codes import CONSULT_SYSTEM, IMAGING_TELECONSULT
from phix.identity.systems import AFFILIATION_ROLE

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Putian
RADIOLOGY = {"coding": [{"system": "http://snomed.info/sct", "code": "394914008", "display": "Radiology"}]}
INTERNAL = {
    "coding": [{"system": "http://snomed.info/sct", "code": "419192003", "display": "Internal medicine"}]
}


class Clock:
    """``app.state.clock``: returns ``now``, moved by the test."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def organization(org_id: str, name: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": org_id, "active": True, "name": name}


def role(role_id: str, org_id: str, specialty: dict[str, Any], active: bool = True) -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": role_id,
        "active": active,
        "organization": {"reference": f"Organization/{org_id}"},
        "code": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/practitioner-role", "code": "doctor"}
                ]
            }
        ],
        "specialty": [specialty],
    }


def affiliation(grassroots: str, site: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "OrganizationAffiliation",
        "id": f"aff-{grassroots}-{site}",
        "active": True,
        "period": {"start": "2020-01-01"},
        "organization": {"reference": f"Organization/org-{site}"},
        "participatingOrganization": {"reference": f"Organization/org-{grassroots}"},
        "code": [{"coding": [{"system": AFFILIATION_ROLE, "code": "teleconsultation"}]}],
        **extra,
    }


NETWORK: list[dict[str, Any]] = [
    organization("org-xtwzwsy", "莆田市荔城区西天尾镇卫生院"),
    organization("org-hszxwsy", "莆田市荔城区黄石镇中心卫生院"),
    organization("org-ptsdyyy", "莆田市第一医院"),
    organization("org-ptxyfsyy", "莆田学院附属医院"),
    role("role-gp", "org-xtwzwsy", {"coding": [{"system": "http://snomed.info/sct", "code": "394814009"}]}),
    role("role-r1", "org-ptsdyyy", RADIOLOGY),
    role("role-r2", "org-ptsdyyy", RADIOLOGY),
    role("role-im", "org-ptsdyyy", INTERNAL),
    role("role-r3", "org-ptxyfsyy", RADIOLOGY),
    affiliation("xtwzwsy", "ptsdyyy"),
    {"resourceType": "Patient", "id": "pat-1", "name": [{"family": "陈", "given": ["伟"]}], "gender": "male"},
    {
        "resourceType": "ImagingStudy",
        "id": "study-1",
        "status": "available",
        "subject": {"reference": "Patient/pat-1"},
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
        "description": "胸部CT平扫",
    },
]


async def seed(client: httpx.AsyncClient, resources: list[dict[str, Any]] = NETWORK) -> None:
    """PUT the resources in one transaction bundle."""
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources
    ]
    response = await client.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert response.status_code == 200, response.text


def consult_request(
    priority: str = "routine", requester: str = "PractitionerRole/role-gp", **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "priority": priority,
        "category": [{"coding": [{"system": CONSULT_SYSTEM, "code": IMAGING_TELECONSULT}]}],
        "code": {"text": "远程影像会诊"},
        "subject": {"reference": "Patient/pat-1"},
        "requester": {"reference": requester},
        "reasonCode": [{"text": "咳嗽两周，胸片可疑结节"}],
        "supportingInfo": [{"reference": "ImagingStudy/study-1"}],
        **extra,
    }


def report(conclusion: str = "右肺上叶小结节，建议3个月复查。") -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4"}]},
        "conclusion": conclusion,
        "presentedForm": [{"contentType": "text/plain", "data": "5Y+z6IK65LiK5Y+25bCP57uT6IqC"}],
    }


def parameters(**values: Any) -> dict[str, Any]:
    params = []
    for name, value in values.items():
        if isinstance(value, dict) and "resourceType" in value:
            params.append({"name": name, "resource": value})
        elif isinstance(value, dict):
            params.append({"name": name, "valueReference": value})
        else:
            params.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": params}


def task_of(timeliness: dict[str, Any], sr_id: str) -> str:
    """The Task id of a consult, found through ``$consult-timeliness``."""
    for param in timeliness["parameter"]:
        if param["name"] != "consult":
            continue
        parts = {p["name"]: p for p in param["part"]}
        if parts["serviceRequest"]["valueReference"]["reference"] == f"ServiceRequest/{sr_id}":
            return str(parts["task"]["valueReference"]["reference"].split("/")[1])
    raise AssertionError(f"no consult for ServiceRequest/{sr_id}")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 answering from a script of statuses (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> Receiver:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(method, path, headers, body))
            status = self.statuses.pop(0) if self.statuses else 200
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".encode())
            await writer.drain()
        finally:
            writer.close()
