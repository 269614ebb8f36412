"""Code systems, extensions and reference helpers of the teleconsultation workflow."""

from __future__ import annotations

import re
from typing import Any

from phix.identity.systems import CODESYSTEM_BASE

CONSULT_SYSTEM = f"{CODESYSTEM_BASE}/consult"
IMAGING_TELECONSULT = "imaging-teleconsult"
BUSINESS_STATUS_SYSTEM = f"{CODESYSTEM_BASE}/consult-status"
EVENT_SYSTEM = f"{CODESYSTEM_BASE}/consult-event"
STRUCTURE_BASE = "https://fhir.putian.gov.cn/StructureDefinition"
ESCALATION_EXTENSION = f"{STRUCTURE_BASE}/consult-escalation"
OPERATION_BASE = "https://fhir.putian.gov.cn/OperationDefinition"
SYSTEM_AUTHOR = "phix teleconsultation service / 远程会诊服务"

PRIORITIES = ("routine", "urgent", "asap", "stat")

# Task.businessStatus codes (CodeSystem consult-status)
UNASSIGNED = "unassigned"
ASSIGNED = "assigned"
REASSIGNED = "reassigned"
OVERDUE = "overdue"
ESCALATED = "escalated"
REPORTED = "reported"
BUSINESS_DISPLAY = {
    UNASSIGNED: ("Awaiting a reader", "待分配"),
    ASSIGNED: ("Assigned to a reader", "已分配"),
    REASSIGNED: ("Reassigned to another reader", "已改派"),
    OVERDUE: ("Overdue", "已超时"),
    ESCALATED: ("Overdue, escalated to another reader", "超时已升级改派"),
    REPORTED: ("Report issued", "已出报告"),
}


def consult_code() -> dict[str, Any]:
    return {
        "coding": [
            {"system": CONSULT_SYSTEM, "code": IMAGING_TELECONSULT, "display": "Imaging teleconsultation"}
        ],
        "text": "远程影像会诊 / Imaging teleconsultation",
    }


def business_status(code: str) -> dict[str, Any]:
    display, chinese = BUSINESS_DISPLAY[code]
    return {"coding": [{"system": BUSINESS_STATUS_SYSTEM, "code": code, "display": display}], "text": chinese}


def has_coding(concepts: Any, system: str, code: str) -> bool:
    """True when a CodeableConcept (or a list of them) carries ``system|code``."""
    items = concepts if isinstance(concepts, list) else [concepts]
    for concept in items:
        if not isinstance(concept, dict):
            continue
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict) and coding.get("system") == system and coding.get("code") == code:
                return True
    return False


def coding_code(concept: Any, system: str) -> str | None:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict) and coding.get("system") == system:
                code = coding.get("code")
                return code if isinstance(code, str) else None
    return None


def is_consult(resource: dict[str, Any]) -> bool:
    """A ServiceRequest or Task marked as an imaging teleconsultation (in ``code`` or ``category``)."""
    return has_coding(resource.get("code"), CONSULT_SYSTEM, IMAGING_TELECONSULT) or has_coding(
        resource.get("category"), CONSULT_SYSTEM, IMAGING_TELECONSULT
    )


_REF = re.compile(r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def ref_target(reference: Any) -> tuple[str, str] | None:
    """(type, id) of a Reference object or reference string (relative or absolute URL)."""
    value = reference.get("reference") if isinstance(reference, dict) else reference
    if not isinstance(value, str):
        return None
    match = _REF.search(value)
    return (match.group("type"), match.group("id")) if match else None


def ref_id(reference: Any, res_type: str) -> str | None:
    target = ref_target(reference)
    return target[1] if target and target[0] == res_type else None


def first_ref(references: Any, res_type: str) -> str | None:
    for item in references if isinstance(references, list) else [references]:
        found = ref_id(item, res_type)
        if found:
            return found
    return None


def reference(res_type: str, res_id: str, display: str | None = None) -> dict[str, str]:
    out = {"reference": f"{res_type}/{res_id}"}
    if display:
        out["display"] = display
    return out
