"""DICOM -> FHIR R4: ImagingStudy, the DICOMweb Endpoint and a minimal Patient.

Input is the index (``dicom_studies`` / ``dicom_instances`` rows), already decoded with each
instance's character set. Person names keep their DICOM groups: the ideographic group
(``王^小东``) becomes the official HumanName, the alphabetic one (``Wang^XiaoDong``) a second
HumanName; both carry the ISO 21090 representation extension (IDE / ABC).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from phix.identity import systems

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SNOMED = "http://snomed.info/sct"
ENDPOINT_ID = "phix-dicomweb"
_EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
_DEFAULT_TZ = "+08:00"  # China Standard Time when the instance carries no TimezoneOffsetFromUTC

MODALITIES = {
    "CR": "Computed Radiography", "CT": "Computed Tomography", "DX": "Digital Radiography",
    "ECG": "Electrocardiography", "ES": "Endoscopy", "IO": "Intra-oral Radiography",
    "MG": "Mammography", "MR": "Magnetic Resonance", "NM": "Nuclear Medicine",
    "OP": "Ophthalmic Photography", "OT": "Other", "PT": "Positron emission tomography",
    "PX": "Panoramic X-Ray", "RF": "Radio Fluoroscopy", "SC": "Secondary Capture",
    "SR": "SR Document", "US": "Ultrasound", "XA": "X-Ray Angiography", "XC": "External-camera Photography",
}  # fmt: skip

# DICOM BodyPartExamined -> SNOMED CT (PS3.16 Annex L), display as in phix.synth.imaging
BODY_PARTS = {
    "ABDOMEN": ("818983003", "Abdomen"), "ANKLE": ("70258002", "Ankle joint structure"),
    "BRAIN": ("12738006", "Brain structure"), "BREAST": ("76752008", "Breast structure"),
    "CHEST": ("51185008", "Thoracic structure"), "CSPINE": ("122494005", "Cervical spine structure"),
    "ELBOW": ("16953009", "Elbow joint structure"), "FOOT": ("56459004", "Foot structure"),
    "HAND": ("85562004", "Hand structure"), "HEAD": ("69536005", "Head structure"),
    "HEART": ("80891009", "Heart structure"), "HIP": ("24136001", "Hip joint structure"),
    "KIDNEY": ("64033007", "Kidney structure"), "KNEE": ("72696002", "Knee region structure"),
    "LIVER": ("10200004", "Liver structure"), "LSPINE": ("122496007", "Lumbar spine structure"),
    "NECK": ("45048000", "Neck structure"), "PELVIS": ("816092008", "Pelvis"),
    "SHOULDER": ("16982005", "Shoulder region structure"), "SKULL": ("89546000", "Bone structure of cranium"),
    "SPINE": ("421060004", "Spinal column structure"), "TSPINE": ("122495006", "Thoracic spine structure"),
    "WHOLEBODY": ("38266002", "Entire body as a whole"), "WRIST": ("74670003", "Wrist joint structure"),
}  # fmt: skip

# Elements this module owns in an ImagingStudy; anything else already there (encounter, basedOn,
# referrer, interpreter, location, procedureCode ...) is kept when the study is updated.
_OWNED = (
    "status", "modality", "started", "numberOfSeries", "numberOfInstances", "endpoint",
    "description", "series",
)  # fmt: skip


def study_uid_identifier(study_uid: str) -> dict[str, str]:
    return {"use": "official", "system": systems.DICOM_UID, "value": f"urn:oid:{study_uid}"}


def modality_coding(code: str) -> dict[str, str]:
    coding = {"system": DCM, "code": code}
    if code in MODALITIES:
        coding["display"] = MODALITIES[code]
    return coding


def body_site(code: str) -> dict[str, str]:
    if code.upper() in BODY_PARTS:
        snomed, display = BODY_PARTS[code.upper()]
        return {"system": SNOMED, "code": snomed, "display": display}
    return {"display": code}


def fhir_date(da: str | None) -> str | None:
    if not da or not re.fullmatch(r"\d{8}", da.strip()):
        return None
    d = da.strip()
    return f"{d[:4]}-{d[4:6]}-{d[6:]}"


def _tz(offset: str | None) -> str:
    if offset and re.fullmatch(r"[+-]\d{4}", offset.strip()):
        o = offset.strip()
        return f"{o[:3]}:{o[3:]}"
    return _DEFAULT_TZ


def fhir_datetime(da: str | None, tm: str | None, tz_offset: str | None = None) -> str | None:
    """DICOM DA + TM (+ TimezoneOffsetFromUTC) -> FHIR dateTime; date only when TM is absent."""
    date = fhir_date(da)
    if date is None:
        return None
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", (tm or "").strip().replace(":", ""))
    if not match:
        return date
    hh, mm, ss, frac = match.groups()
    if int(hh) > 23 or int(mm or 0) > 59 or int(ss or 0) > 59:
        return date
    time = f"{hh}:{mm or '00'}:{ss or '00'}" + (f".{frac}" if frac else "")
    return f"{date}T{time}{_tz(tz_offset)}"


def _first_value(attributes: Mapping[str, Any], tag: str) -> Any:
    element = attributes.get(tag) or {}
    values = element.get("Value") or []
    return values[0] if values else None


def human_names(patient_name: str | None) -> list[dict[str, Any]]:
    """PN ``alphabetic=ideographic=phonetic`` -> HumanNames (ideographic first, as official)."""
    if not patient_name:
        return []
    groups = [*patient_name.split("="), "", "", ""][:3]
    names: list[dict[str, Any]] = []
    for group, code in ((groups[1], "IDE"), (groups[0], "ABC")):
        parts = [p.strip() for p in group.split("^")]
        family = parts[0] if parts else ""
        given = [g for g in parts[1:3] if g]
        if not family and not given:
            continue
        joiner = "" if code == "IDE" else " "
        name: dict[str, Any] = {
            "extension": [{"url": _EN_REPRESENTATION, "valueCode": code}],
            "use": "official" if not names else "usual",
            "text": joiner.join([family, *given]).strip(),
        }
        if family:
            name["family"] = family
        if given:
            name["given"] = given
        names.append(name)
    return names


def minimal_patient(
    study: Mapping[str, Any], mrn_system: str, organization_ref: str | None
) -> dict[str, Any]:
    """The Patient created when the sending institution's MRN is not known yet."""
    patient: dict[str, Any] = {"resourceType": "Patient"}
    if study.get("patient_id"):
        patient["identifier"] = [
            {
                "use": "usual",
                "type": {"coding": [{"system": systems.V2_0203, "code": systems.TYPE_MRN}]},
                "system": mrn_system,
                "value": study["patient_id"],
            }
        ]
    names = human_names(study.get("patient_name"))
    if names:
        patient["name"] = names
    sex = {"M": "male", "F": "female", "O": "other"}.get((study.get("patient_sex") or "").upper())
    if sex:
        patient["gender"] = sex
    birth = fhir_date(study.get("patient_birth_date"))
    if birth:
        patient["birthDate"] = birth
    if organization_ref:
        patient["managingOrganization"] = {"reference": organization_ref}
    return patient


def endpoint(address: str) -> dict[str, Any]:
    return {
        "resourceType": "Endpoint",
        "status": "active",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "dicom-wado-rs",
            "display": "DICOM WADO-RS",
        },
        "name": "phix DICOMweb (WADO-RS, QIDO-RS, STOW-RS)",
        "payloadType": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type", "code": "DICOM"}
                ]
            }
        ],
        "payloadMimeType": ["application/dicom"],
        "address": address,
    }


def _series(rows: Sequence[Mapping[str, Any]], tz: str | None) -> list[dict[str, Any]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["series_instance_uid"], []).append(row)
    out = []
    for uid, members in grouped.items():
        first = members[0]
        series: dict[str, Any] = {"uid": uid}
        if first.get("series_number") is not None:
            series["number"] = first["series_number"]
        series["modality"] = modality_coding(first.get("modality") or "OT")
        if first.get("series_description"):
            series["description"] = first["series_description"]
        series["numberOfInstances"] = len(members)
        if first.get("body_part"):
            series["bodySite"] = body_site(first["body_part"])
        started = fhir_datetime(first.get("series_date"), first.get("series_time"), tz)
        if started:
            series["started"] = started
        instances = []
        for row in members:
            inst: dict[str, Any] = {
                "uid": row["sop_instance_uid"],
                "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{row['sop_class_uid']}"},
            }
            if row.get("instance_number") is not None:
                inst["number"] = row["instance_number"]
            instances.append(inst)
        series["instance"] = instances
        out.append(series)
    out.sort(key=lambda s: (s.get("number") is None, s.get("number") or 0, s["uid"]))
    return out


def imaging_study(
    study: Mapping[str, Any],
    instances: Sequence[Mapping[str, Any]],
    *,
    subject: str,
    endpoint_id: str = ENDPOINT_ID,
    accession_system: str | None = None,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ImagingStudy of a received study, merged into ``existing`` (its other elements kept)."""
    attributes = study.get("attributes") or {}
    tz = _first_value(attributes, "00080201")
    series = _series(instances, tz)
    resource: dict[str, Any] = {"resourceType": "ImagingStudy"}
    if existing:
        resource.update({k: v for k, v in existing.items() if k not in ("id", "meta", *_OWNED)})
    identifiers = list(resource.get("identifier") or [])
    ours: list[dict[str, Any]] = [study_uid_identifier(study["study_instance_uid"])]
    if study.get("accession_number") and accession_system:
        ours.append(
            {
                "type": {"coding": [{"system": systems.V2_0203, "code": "ACSN", "display": "Accession ID"}]},
                "system": accession_system,
                "value": study["accession_number"],
            }
        )
    for ident in ours:
        if not any(
            i.get("system") == ident["system"] and i.get("value") == ident["value"] for i in identifiers
        ):
            identifiers.append(ident)
    resource["identifier"] = identifiers
    resource["status"] = "available"
    codes = sorted({s["modality"]["code"] for s in series})
    resource["modality"] = [modality_coding(c) for c in codes]
    resource.setdefault("subject", {"reference": subject})
    started = fhir_datetime(study.get("study_date"), study.get("study_time"), tz)
    if started:
        resource["started"] = started
    resource["numberOfSeries"] = len(series)
    resource["numberOfInstances"] = sum(s["numberOfInstances"] for s in series)
    resource["endpoint"] = [{"reference": f"Endpoint/{endpoint_id}"}]
    if study.get("study_description"):
        resource["description"] = study["study_description"]
    resource["series"] = series
    return resource


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal apart from id and meta (skip writing a new version that changes nothing)."""
    strip = ("id", "meta")
    return {k: v for k, v in a.items() if k not in strip} == {k: v for k, v in b.items() if k not in strip}
