"""A normalised, comparable view of one FHIR Patient (a *source record* of the index).

:func:`from_patient` never raises on bad content: malformed identifiers, phones or dates are
kept as typed and listed in ``flags`` so stewards can see them, and simply do not count as
evidence for a match.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from phix.identity import systems
from phix.mpi import normalize
from phix.mpi.normalize import Name

GOLDEN_TAG_SYSTEM = f"{systems.CODESYSTEM_BASE}/mpi"
GOLDEN_TAG_CODE = "golden"
_ORG_SYSTEM = re.compile(rf"^{re.escape(systems.NAMING_BASE)}/([a-z0-9][a-z0-9\-]*)/(mrn|visit-card)$")
_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})")

# Identifier kinds: what the index knows each system to be.
RESIDENT_ID = "resident-id"
CITIZEN_CARD = "citizen-card"
VIRTUAL_CARD = "virtual-card"
MRN = "mrn"
VISIT_CARD = "visit-card"
OTHER = "other"
_TYPE_KINDS = {
    systems.TYPE_RESIDENT_ID: RESIDENT_ID,
    systems.TYPE_CITIZEN_CARD: CITIZEN_CARD,
    systems.TYPE_VIRTUAL_CARD: VIRTUAL_CARD,
}


def identifier_kind(system: str | None) -> tuple[str, str | None]:
    """(kind, institution code) of an identifier system."""
    if system == systems.RESIDENT_ID:
        return RESIDENT_ID, None
    if system == systems.CITIZEN_CARD:
        return CITIZEN_CARD, None
    if system == systems.VIRTUAL_CARD:
        return VIRTUAL_CARD, None
    m = _ORG_SYSTEM.match(system or "")
    if m:
        return (MRN if m.group(2) == "mrn" else VISIT_CARD), m.group(1)
    return OTHER, None


def canonical_value(kind: str, value: str) -> str:
    """The form identifiers are indexed and looked up in (IDs upgraded to 18 characters)."""
    if kind == RESIDENT_ID:
        parsed = normalize.resident_id(value)
        return parsed.id18 or parsed.norm
    return normalize.fold_identifier(value)


@dataclass(slots=True)
class Identifier:
    system: str
    value: str  # canonical (see canonical_value)
    kind: str
    raw: str
    valid: bool = True


@dataclass(slots=True)
class Features:
    patient_id: str
    org: str | None = None
    id18: str | None = None  # the valid resident ID
    id_raw: str | None = None  # a malformed resident ID as normalised (kept for fuzzy comparison)
    name: Name | None = None
    birth: str | None = None  # ISO date
    sex: str | None = None  # male | female
    phones: tuple[str, ...] = ()
    address: tuple[str, str, str, str] | None = None
    cards: tuple[str, ...] = ()  # citizen card numbers
    vcards: tuple[str, ...] = ()  # virtual card tokens
    others: tuple[tuple[str, str], ...] = ()  # (system, value) of identifiers of other systems
    identifiers: list[Identifier] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    name_fhir: dict[str, Any] | None = None
    address_fhir: dict[str, Any] | None = None
    telecom_fhir: list[dict[str, Any]] = field(default_factory=list)
    updated: str | None = None
    id_birth: str | None = None  # birth date coded in the resident ID (derived)
    id_sex: str | None = None  # sex coded in the resident ID (derived)
    hashes: tuple[int, ...] = ()  # blocking-key hashes (derived, see phix.mpi.blocking)

    def derive(self, keys: bool = True) -> Features:
        """Fill the derived fields (once, after the others are set)."""
        if self.id18:
            self.id_birth = _id_birth(self.id18)
            self.id_sex = "male" if int(self.id18[16]) % 2 else "female"
        if keys:
            from phix.mpi.blocking import hashes

            self.hashes = tuple(hashes(self))
        return self

    def local_ids(self) -> list[Identifier]:
        return [i for i in self.identifiers if i.kind in (MRN, VISIT_CARD)]

    # -- storage form ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        n = self.name
        return {
            "p": self.patient_id, "o": self.org, "i": self.id18, "ir": self.id_raw,
            "n": None if n is None else [n.family, n.given, n.han, list(n.readings), n.temp],
            "b": self.birth, "s": self.sex, "ph": list(self.phones),
            "a": None if self.address is None else list(self.address),
            "cc": list(self.cards), "vc": list(self.vcards), "oi": [list(o) for o in self.others],
            "ids": [[i.system, i.value, i.kind, i.raw, i.valid] for i in self.identifiers],
            "f": self.flags, "nf": self.name_fhir, "af": self.address_fhir, "tf": self.telecom_fhir,
            "u": self.updated,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Features:
        n = data.get("n")
        return cls(
            patient_id=data["p"], org=data.get("o"), id18=data.get("i"), id_raw=data.get("ir"),
            name=None if n is None else Name(n[0], n[1], n[2], tuple(n[3]), bool(n[4])),
            birth=data.get("b"), sex=data.get("s"), phones=tuple(data.get("ph") or ()),
            address=None if data.get("a") is None else tuple(data["a"]),
            cards=tuple(data.get("cc") or ()), vcards=tuple(data.get("vc") or ()),
            others=tuple((s, v) for s, v in data.get("oi") or ()),
            identifiers=[Identifier(s, v, k, r, bool(ok)) for s, v, k, r, ok in data.get("ids") or ()],
            flags=list(data.get("f") or ()), name_fhir=data.get("nf"), address_fhir=data.get("af"),
            telecom_fhir=list(data.get("tf") or ()), updated=data.get("u"),
        ).derive(keys=False)  # fmt: skip


def is_golden(resource: dict[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(
        isinstance(t, dict) and t.get("system") == GOLDEN_TAG_SYSTEM and t.get("code") == GOLDEN_TAG_CODE
        for t in tags
    )


def _type_kind(ident: dict[str, Any]) -> str | None:
    for coding in (ident.get("type") or {}).get("coding") or []:
        if isinstance(coding, dict) and coding.get("system") == systems.V2_0203:
            kind = _TYPE_KINDS.get(str(coding.get("code")))
            if kind:
                return kind
    return None


def _identifiers(feats: Features, resource: dict[str, Any]) -> None:
    for pos, ident in enumerate(resource.get("identifier") or []):
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            continue
        raw = ident["value"]
        system = ident.get("system") if isinstance(ident.get("system"), str) else None
        kind, org = identifier_kind(system)
        if kind == OTHER and system is None:
            typed = _type_kind(ident)
            if typed:
                kind, system = (
                    typed,
                    {RESIDENT_ID: systems.RESIDENT_ID, CITIZEN_CARD: systems.CITIZEN_CARD}.get(
                        typed, systems.VIRTUAL_CARD
                    ),
                )
                feats.flags.append(f"identifier[{pos}]: no system; recognised as {kind} by its type")
        if system is None:
            feats.flags.append(f"identifier[{pos}]: no system; not used for matching")
            continue
        if kind == RESIDENT_ID:
            parsed = normalize.resident_id(raw)
            feats.identifiers.append(Identifier(system, parsed.id18 or parsed.norm, kind, raw, parsed.valid))
            for flag in parsed.flags:
                feats.flags.append(f"identifier[{pos}]: {flag}")
            if parsed.id18 and feats.id18 is None:
                feats.id18 = parsed.id18
            elif parsed.id18 is None and feats.id_raw is None:
                feats.id_raw = parsed.norm
            continue
        value = normalize.fold_identifier(raw)
        if not value:
            feats.flags.append(f"identifier[{pos}]: empty value")
            continue
        feats.identifiers.append(Identifier(system, value, kind, raw, True))
        if kind == OTHER:
            feats.others += ((system, value),)
        elif kind == CITIZEN_CARD:
            feats.cards += (value,)
        elif kind == VIRTUAL_CARD:
            feats.vcards += (value,)
        if org and feats.org is None and kind == MRN:
            feats.org = org


def _name(feats: Features, resource: dict[str, Any]) -> None:
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    names.sort(key=lambda n: {"official": 0, "usual": 1, None: 2}.get(n.get("use"), 3))
    for entry in names:
        given = entry.get("given") or []
        given_text = "".join(g for g in given if isinstance(g, str))
        family = str(entry["family"]) if isinstance(entry.get("family"), str) else ""
        text = str(entry["text"]) if isinstance(entry.get("text"), str) else ""
        parsed = normalize.parse_name(family, given_text, text, entry.get("use"))
        if parsed is not None:
            feats.name, feats.name_fhir = parsed, entry
            if not parsed.temp:
                return


def _birth(feats: Features, resource: dict[str, Any]) -> None:
    value = resource.get("birthDate")
    if not isinstance(value, str):
        return
    m = _DATE.match(value)
    if m is None:
        feats.flags.append("birthDate: not a full date; not used for matching")
        return
    try:
        feats.birth = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        feats.flags.append("birthDate: not a calendar date")


def _id_birth(id18: str) -> str:
    """Birth date of a *valid* 18-character ID (validation checked the calendar date)."""
    return f"{id18[6:10]}-{id18[10:12]}-{id18[12:14]}"


def from_patient(patient_id: str, resource: dict[str, Any]) -> Features:
    """The comparable features of a Patient resource."""
    feats = Features(patient_id)
    _identifiers(feats, resource)
    _name(feats, resource)
    _birth(feats, resource)
    gender = resource.get("gender")
    feats.sex = gender if gender in ("male", "female") else None
    org_ref = (resource.get("managingOrganization") or {}).get("reference")
    if feats.org is None and isinstance(org_ref, str):
        feats.org = org_ref
    phones: list[str] = []
    for pos, contact in enumerate(resource.get("telecom") or []):
        if (
            isinstance(contact, dict)
            and contact.get("system") == "phone"
            and isinstance(contact.get("value"), str)
        ):
            found = normalize.phone(contact["value"])
            if found is None:
                feats.flags.append(f"telecom[{pos}]: not a recognisable phone number")
            elif found not in phones:
                phones.append(found)
            feats.telecom_fhir.append(contact)
    feats.phones = tuple(phones)
    for entry in resource.get("address") or []:
        if isinstance(entry, dict):
            parts = (entry.get("state"), entry.get("city"), entry.get("district"), *(entry.get("line") or []))
            text = entry.get("text") or "".join(x for x in parts if isinstance(x, str))
            tokens = normalize.address(text) if text else None
            if tokens is not None:
                feats.address, feats.address_fhir = tokens.tokens(), entry
                break
    if feats.id18 and feats.birth and _id_birth(feats.id18) != feats.birth:
        feats.flags.append("birthDate: differs from the date in the resident ID")
    if feats.id18 and feats.sex and feats.sex != ("male" if int(feats.id18[16]) % 2 else "female"):
        feats.flags.append("gender: differs from the sex coded in the resident ID")
    meta = resource.get("meta") or {}
    feats.updated = meta.get("lastUpdated") if isinstance(meta.get("lastUpdated"), str) else None
    return feats.derive()
