"""Hand-made Patient resources for the patient-index tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from phix.identity import gb11643, systems


def resident_id(birth: str, order: int, area: str = "350304") -> str:
    return gb11643.make(area, dt.date.fromisoformat(birth), order)


def patient(
    family: str = "陈",
    given: str = "丽华",
    *,
    birth: str | None = "1980-05-17",
    gender: str | None = "female",
    rid: str | None = None,
    phone: str | None = None,
    address: str | None = None,
    org: str = "ptsdyyy",
    mrn: str | None = None,
    citizen_card: str | None = None,
    virtual_card: str | None = None,
    text: str | None = None,
    use: str = "official",
) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient"}
    ids: list[dict[str, Any]] = []
    if mrn:
        ids.append({"system": systems.mrn_system(org), "value": mrn})
    if rid:
        ids.append({"system": systems.RESIDENT_ID, "value": rid})
    if citizen_card:
        ids.append({"system": systems.CITIZEN_CARD, "value": citizen_card})
    if virtual_card:
        ids.append({"system": systems.VIRTUAL_CARD, "value": virtual_card})
    if ids:
        res["identifier"] = ids
    name: dict[str, Any] = {"use": use}
    if family:
        name["family"] = family
    if given:
        name["given"] = [given]
    name["text"] = text or family + given
    res["name"] = [name]
    if gender:
        res["gender"] = gender
    if birth:
        res["birthDate"] = birth
    if phone:
        res["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    if address:
        res["address"] = [{"use": "home", "text": address}]
    return res
