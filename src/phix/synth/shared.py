"""FHIR resources shared by all institutions: Organization, Location, Endpoint, Practitioner,
PractitionerRole and OrganizationAffiliation (the teleconsultation contracts).

They have fixed, readable ids and are the same for every seed, so the ``shared`` bundle can be
loaded first and loaded again without harm.
"""

from __future__ import annotations

from collections.abc import Iterator

from phix.identity import systems
from phix.synth import codes
from phix.synth.codes import coding, concept
from phix.synth.geography import DISTRICT_BY_CODE
from phix.synth.ids import hex_token
from phix.synth.institutions import (
    GRASSROOTS_KINDS,
    KIND_DISPLAY,
    Institution,
    Staff,
    all_institutions,
    physician_license,
    specialist_for,
)

Resource = dict[str, object]


def _ref(kind: str, rid: str, display: str | None = None) -> dict[str, str]:
    result = {"reference": f"{kind}/{rid}"}
    if display:
        result["display"] = display
    return result


def endpoint_id(inst: Institution) -> str:
    return f"ep-{inst.code}-dicomweb"


def has_pacs(inst: Institution) -> bool:
    return inst.is_hospital and bool(inst.modalities)


def credit_code(inst: Institution) -> str:
    """A synthetic 18-character unified social credit code (统一社会信用代码)."""
    return "12350300" + hex_token(10, "uscc", inst.code)


def _address(inst: Institution) -> dict[str, object]:
    district = DISTRICT_BY_CODE[inst.district_code].name
    locality = inst.locality or ""
    return {
        "use": "work",
        "text": f"福建省莆田市{district}{inst.town}{locality}",
        "line": [f"{inst.town}{locality}"],
        "city": "莆田市",
        "district": district,
        "state": "福建省",
        "country": "CN",
    }


def organization(inst: Institution) -> Resource:
    res: Resource = {
        "resourceType": "Organization",
        "id": inst.org_id,
        "identifier": [{"use": "official", "system": systems.ORGANIZATION_CODE, "value": credit_code(inst)}],
        "active": True,
        "type": [
            concept(codes.ORG_TYPE, "prov", "Healthcare Provider"),
            concept(systems.INSTITUTION_KIND, inst.kind, KIND_DISPLAY[inst.kind]),
        ],
        "name": inst.name,
        "alias": [inst.code],
        "address": [_address(inst)],
    }
    if inst.parent:
        res["partOf"] = _ref("Organization", f"org-{inst.parent}")
    if has_pacs(inst):
        res["endpoint"] = [_ref("Endpoint", endpoint_id(inst))]
    return res


def location(inst: Institution) -> Resource:
    # A stable position inside Putian's bounding box, derived from the code.
    token = int(hex_token(8, "position", inst.code), 16)
    lat = round(25.05 + (token % 6000) / 10000, 4)
    lon = round(118.65 + (token // 6000 % 7000) / 10000, 4)
    role = ("HOSP", "Hospital") if inst.is_hospital else ("PC", "primary care clinic")
    return {
        "resourceType": "Location",
        "id": inst.location_id,
        "status": "active",
        "name": inst.name,
        "mode": "instance",
        "type": [concept(codes.ROLE_CODE, role[0], role[1])],
        "address": _address(inst),
        "position": {"longitude": lon, "latitude": lat},
        "managingOrganization": _ref("Organization", inst.org_id, inst.name),
    }


def endpoint(inst: Institution) -> Resource:
    return {
        "resourceType": "Endpoint",
        "id": endpoint_id(inst),
        "status": "active",
        "connectionType": coding(codes.ENDPOINT_CONNECTION, "dicom-wado-rs", "DICOM WADO-RS"),
        "name": f"{inst.name} PACS",
        "managingOrganization": _ref("Organization", inst.org_id),
        "payloadType": [
            concept("http://terminology.hl7.org/CodeSystem/endpoint-payload-type", "DICOM", "DICOM")
        ],
        "payloadMimeType": ["application/dicom"],
        "address": f"https://{inst.code}.pacs.putian.invalid/dicom-web",
    }


def staff_name(staff: Staff) -> list[dict[str, object]]:
    return [
        {
            "use": "official",
            "text": staff.family + staff.given,
            "family": staff.family,
            "given": [staff.given],
        }
    ]


def practitioner(staff: Staff) -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": f"prac-{staff.id}",
        "identifier": [
            {"use": "official", "system": systems.PHYSICIAN_LICENSE, "value": physician_license(staff)}
        ],
        "active": True,
        "name": staff_name(staff),
        "gender": staff.sex,
    }


def practitioner_role(inst: Institution, staff: Staff) -> Resource:
    snomed, display, department = codes.SPECIALTIES[staff.specialty]
    return {
        "resourceType": "PractitionerRole",
        "id": f"role-{staff.id}",
        "active": True,
        "practitioner": _ref("Practitioner", f"prac-{staff.id}", staff.family + staff.given),
        "organization": _ref("Organization", inst.org_id, inst.name),
        "code": [concept(codes.PRACTITIONER_ROLE, "doctor", "Doctor")],
        "specialty": [concept(codes.SNOMED, snomed, display, department)],
        "location": [_ref("Location", inst.location_id)],
    }


def affiliation(grassroots: Institution, specialist: Institution) -> Resource:
    return {
        "resourceType": "OrganizationAffiliation",
        "id": f"aff-{grassroots.code}-{specialist.code}",
        "active": True,
        "period": {"start": "2020-01-01"},
        "organization": _ref("Organization", specialist.org_id, specialist.name),
        "participatingOrganization": _ref("Organization", grassroots.org_id, grassroots.name),
        "code": [
            concept(systems.AFFILIATION_ROLE, "teleradiology", "Teleradiology reading", "远程影像诊断"),
            concept(systems.AFFILIATION_ROLE, "teleconsultation", "Teleconsultation", "远程会诊"),
        ],
        "specialty": [concept(codes.SNOMED, "394914008", "Radiology", "放射科")],
        "location": [_ref("Location", grassroots.location_id)],
        "endpoint": [_ref("Endpoint", endpoint_id(specialist))],
    }


def shared_resources() -> Iterator[Resource]:
    """Every shared resource, in load order (organizations before what refers to them)."""
    institutions = all_institutions()
    yield from (organization(i) for i in institutions)
    yield from (endpoint(i) for i in institutions if has_pacs(i))
    yield from (location(i) for i in institutions)
    for inst in institutions:
        yield from (practitioner(s) for s in inst.staff)
    for inst in institutions:
        yield from (practitioner_role(inst, s) for s in inst.staff)
    for inst in institutions:
        if inst.kind in GRASSROOTS_KINDS:
            yield affiliation(inst, specialist_for(inst))
