"""The identifier systems the platform recognises, as FHIR NamingSystem resources.

``profiles/NamingSystem-*.json`` are generated from here (``python -m phix.mpi.naming profiles``)
and a test keeps them in step: the three city-wide systems (resident ID, citizen card, virtual
health card) one file each, and one Bundle with the MRN and visit-card systems of every
institution of the network.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from phix.identity import systems

DATE = "2026-06-30"
PUBLISHER = "Putian Health Information Exchange (phix)"
_JURISDICTION = [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "CN"}]}]


def _type(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": systems.V2_0203, "code": code, "display": display}]}


def naming_system(
    res_id: str, name: str, title: str, type_code: str, type_display: str, uri: str, description: str,
    usage: str, oid: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    unique = [{"type": "uri", "value": uri, "preferred": True}]
    if oid:
        unique.append({"type": "oid", "value": oid, "preferred": False})
    return {
        "resourceType": "NamingSystem",
        "id": res_id,
        "name": name,
        "status": "active",
        "kind": "identifier",
        "date": DATE,
        "publisher": PUBLISHER,
        "responsible": title,
        "type": _type(type_code, type_display),
        "description": description,
        "jurisdiction": _JURISDICTION,
        "usage": usage,
        "uniqueId": unique,
    }


def city_wide() -> list[dict[str, Any]]:
    return [
        naming_system(
            "resident-id", "ResidentIdentityNumber", "Ministry of Public Security (GB 11643-1999)",
            systems.TYPE_RESIDENT_ID, "National unique individual identifier", systems.RESIDENT_ID,
            "居民身份证号码: the 18-character resident identity number (GB 11643-1999: area code, "
            "birth date, order code, check character). Legacy 15-digit numbers are accepted and upgraded.",
            "Send the number as printed (upper- or lower-case X, blanks and full-width digits are "
            "normalised). The patient index validates the check character and compares the embedded "
            "birth date and sex with the record; malformed numbers are kept and flagged, never used to link.",
            "2.16.156.10011.1.1",
        ),
        naming_system(
            "citizen-card", "PutianCitizenCard", "Putian Municipal Government",
            systems.TYPE_CITIZEN_CARD, "Citizenship Card", systems.CITIZEN_CARD,
            "莆田市民卡号: the 16-digit Putian citizen (social security) card number.",
            "Send the 16 digits; blanks and hyphens are ignored. One card names one resident.",
        ),
        naming_system(
            "virtual-card", "FujianVirtualHealthCard", "Fujian Health Commission (electronic health card)",
            systems.TYPE_VIRTUAL_CARD, "Health Card Number", systems.VIRTUAL_CARD,
            "电子健康卡: the token carried by the virtual health card QR code (32 hexadecimal characters).",
            "Send the token; Patient/$resolve-card also accepts the whole QR payload (EHC:<token>, a link "
            "with ?ehc=<token> or a JSON object with an ehc field).",
        ),
    ]  # fmt: skip


def institution(code: str, name: str) -> list[dict[str, Any]]:
    mrn = naming_system(
        f"{code}-mrn", f"MRN_{code}", name, systems.TYPE_MRN, "Medical record number",
        systems.mrn_system(code),
        f"病历号: medical record numbers issued by {name} ({code}).",
        "The institution's own patient number; unique within the institution.",
    )  # fmt: skip
    card = naming_system(
        f"{code}-visit-card", f"VisitCard_{code}", name, systems.TYPE_VISIT_CARD,
        "Patient internal identifier",
        systems.visit_card_system(code), f"就诊卡号: visit cards issued by {name} ({code}).",
        "Printed on the institution's visit card; Patient/$resolve-card looks it up for other institutions.",
    )  # fmt: skip
    return [mrn, card]


def institutions_bundle(network: Iterable[tuple[str, str]]) -> dict[str, Any]:
    entries = [
        {"fullUrl": f"https://fhir.putian.gov.cn/fhir/NamingSystem/{ns['id']}", "resource": ns}
        for code, name in network
        for ns in institution(code, name)
    ]
    return {
        "resourceType": "Bundle",
        "id": "institution-naming-systems",
        "type": "collection",
        "entry": entries,
    }


def network() -> list[tuple[str, str]]:
    from phix.synth.institutions import all_institutions  # the institutions of the Putian network

    return [(i.code, i.name) for i in all_institutions()]


def files() -> dict[str, dict[str, Any]]:
    out = {f"NamingSystem-{ns['id']}.json": ns for ns in city_wide()}
    out["NamingSystem-institutions.json"] = institutions_bundle(network())
    return out


def render(resource: dict[str, Any]) -> str:
    return json.dumps(resource, ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "profiles")
    for name, resource in files().items():
        (folder / name).write_text(render(resource), "utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
