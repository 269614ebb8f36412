"""Link events rendered as FHIR AuditEvent resources (who, when, what, why, score)."""

from __future__ import annotations

from typing import Any

from phix.identity import systems

EVENT_CODE_SYSTEM = f"{systems.CODESYSTEM_BASE}/mpi-event"
SCORE_URL = "https://fhir.putian.gov.cn/StructureDefinition/mpi-score"
GRADE_URL = "https://fhir.putian.gov.cn/StructureDefinition/mpi-match-grade"
_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"


def audit_event(event: dict[str, Any]) -> dict[str, Any]:
    entities: list[dict[str, Any]] = []
    for key, role, display in (
        ("patient_id", "1", "source record"),
        ("golden_id", "1", "resident"),
        ("previous_golden_id", "1", "previous resident"),
    ):
        if event.get(key):
            entities.append(
                {
                    "what": {"reference": f"Patient/{event[key]}"},
                    "role": {"system": _ROLE, "code": role, "display": "Patient"},
                    "description": display,
                }
            )
    extension: list[dict[str, Any]] = []
    if event.get("score") is not None:
        extension.append({"url": SCORE_URL, "valueDecimal": round(float(event["score"]), 3)})
    if event.get("grade"):
        extension.append({"url": GRADE_URL, "valueCode": event["grade"]})
    res: dict[str, Any] = {"resourceType": "AuditEvent", "id": f"mpi-{event['seq']}"}
    if extension:
        res["extension"] = extension
    res |= {
        "type": {"system": EVENT_CODE_SYSTEM, "code": event["action"]},
        "action": "U",
        "recorded": event["at"],
        "outcome": "0",
        "agent": [{"who": {"display": event["actor"]}, "requestor": bool(event.get("manual"))}],
        "source": {"observer": {"display": "phix patient index"}},
        "entity": entities,
    }
    if event.get("reason"):
        res["outcomeDesc"] = event["reason"]
    if event.get("detail"):
        import orjson

        res["entity"].append(
            {
                "description": "detail",
                "detail": [{"type": "json", "valueString": orjson.dumps(event["detail"]).decode()}],
            }
        )
    return res
