"""Golden records: one Patient per resident, rebuilt from its sources by survivorship rules.

=============  ==============================================================================
element        rule (ties go to the most recently updated source)
=============  ==============================================================================
identifier     resident ID: the valid ID most sources carry; citizen and virtual cards: all
               distinct values, newest first. Institution MRNs stay on the sources.
name           official names in Han script beat pinyin beat temporary (newborn) names; among
               those, the simplified form most sources agree on
gender         the sex coded in the chosen resident ID, else the majority of sources
birthDate      the date coded in the chosen resident ID, else the majority of sources
telecom        phones of all sources, newest source first (``rank`` 1 = newest): people change
               numbers, so the latest registration wins
address        the newest source's address (people move)
link           ``seealso`` to every source Patient
=============  ==============================================================================

Golden records carry ``meta.tag`` ``https://fhir.putian.gov.cn/CodeSystem/mpi|golden`` (the
linker ignores writes of tagged Patients) and one extension per element saying which source won
and why. A merged resident becomes ``active: false`` with ``link`` ``replaced-by`` its survivor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from phix.identity import gb11643, systems
from phix.mpi.features import GOLDEN_TAG_CODE, GOLDEN_TAG_SYSTEM, Features

SURVIVORSHIP_URL = "https://fhir.putian.gov.cn/StructureDefinition/mpi-survivorship"
_TYPE = {
    systems.RESIDENT_ID: (systems.TYPE_RESIDENT_ID, "居民身份证号"),
    systems.CITIZEN_CARD: (systems.TYPE_CITIZEN_CARD, "市民卡号"),
    systems.VIRTUAL_CARD: (systems.TYPE_VIRTUAL_CARD, "电子健康卡"),
}


def _newest_first(sources: Sequence[Features]) -> list[Features]:
    return sorted(sources, key=lambda f: (f.updated or "", f.patient_id), reverse=True)


def _vote(values: list[tuple[Any, Features]]) -> tuple[Any, Features, int] | None:
    """Most frequent value; ties to the newest source (``values`` ordered newest first)."""
    if not values:
        return None
    counts = Counter(v for v, _ in values)
    best = max(counts.values())
    for value, source in values:
        if counts[value] == best:
            return value, source, best
    return None  # pragma: no cover


def _identifier(system: str, value: str) -> dict[str, Any]:
    code, text = _TYPE[system]
    return {
        "use": "official" if system == systems.RESIDENT_ID else "usual",
        "type": {"coding": [{"system": systems.V2_0203, "code": code}], "text": text},
        "system": system,
        "value": value,
    }


def _why(element: str, source: Features, reason: str) -> dict[str, Any]:
    return {"element": element, "source": source.patient_id, "reason": reason}


def _name(ordered: list[Features], n: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
    han = [(f.name.han, f) for f in ordered if f.name and f.name.han and not f.name.temp]
    if han:
        value, src, votes = _vote(han) or ("", ordered[0], 0)
        assert src.name is not None
        name = {"use": "official", "text": value, "family": src.name.family, "given": [src.name.given]}
        return name, _why("name", src, f"Han-script name carried by {votes} of {n} sources (simplified)")
    latin = [(f.name.key, f) for f in ordered if f.name and f.name.readings and not f.name.temp]
    if latin:
        _, src, votes = _vote(latin) or ("", ordered[0], 0)
        return dict(src.name_fhir or {}), _why("name", src, f"pinyin name carried by {votes} of {n} sources")
    temp = [f for f in ordered if f.name_fhir]
    if temp:
        entry = {
            k: v for k, v in (temp[0].name_fhir or {}).items() if k in ("use", "text", "family", "given")
        }
        return entry, _why("name", temp[0], "only a temporary (newborn) name is known")
    return None


def build(golden_id: str, sources: Sequence[Features]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The golden Patient of a resident and the survivorship decisions behind it."""
    ordered = _newest_first(sources)
    n = len(ordered)
    why: list[dict[str, Any]] = []
    identifiers: list[dict[str, Any]] = []
    chosen = _vote([(f.id18, f) for f in ordered if f.id18])
    if chosen:
        identifiers.append(_identifier(systems.RESIDENT_ID, chosen[0]))
        why.append(_why("identifier", chosen[1], f"valid resident ID carried by {chosen[2]} of {n} sources"))
    for system, attr in ((systems.CITIZEN_CARD, "cards"), (systems.VIRTUAL_CARD, "vcards")):
        for value in dict.fromkeys(v for f in ordered for v in getattr(f, attr)):
            identifiers.append(_identifier(system, value))
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {
            "tag": [
                {"system": GOLDEN_TAG_SYSTEM, "code": GOLDEN_TAG_CODE, "display": "resident (golden record)"}
            ]
        },
    }
    if identifiers:
        res["identifier"] = identifiers
    res["active"] = True
    name = _name(ordered, n)
    if name:
        res["name"] = [name[0]]
        why.append(name[1])
    phones: list[dict[str, Any]] = []
    seen: set[str] = set()
    for f in ordered:
        for contact in f.telecom_fhir:
            value = str(contact.get("value"))
            if value not in seen:
                seen.add(value)
                phones.append(
                    {
                        "system": "phone",
                        "value": value,
                        "use": contact.get("use", "mobile"),
                        "rank": len(phones) + 1,
                    }
                )
    if phones:
        res["telecom"] = phones
        why.append(_why("telecom", ordered[0], "phones of all sources, the newest registration ranked first"))
    _demographics(res, why, ordered, chosen[0] if chosen else None, n)
    for f in ordered:
        if f.address_fhir:
            res["address"] = [f.address_fhir]
            why.append(_why("address", f, "address of the most recently updated source"))
            break
    res["link"] = [
        {"other": {"reference": f"Patient/{f.patient_id}"}, "type": "seealso"}
        for f in sorted(sources, key=lambda f: f.patient_id)
    ]
    res["extension"] = [_extension(w) for w in why]
    return res, why


def _demographics(
    res: dict[str, Any], why: list[dict[str, Any]], ordered: list[Features], rid: str | None, n: int
) -> None:
    if rid:
        sex = gb11643.sex(rid)
        born = gb11643.birth_date(rid)
        holder = next(f for f in ordered if f.id18 == rid)
        if sex:
            res["gender"] = sex
            why.append(_why("gender", holder, "sex coded in the resident ID"))
        if born:
            res["birthDate"] = born.isoformat()
            why.append(_why("birthDate", holder, "birth date coded in the resident ID"))
        return
    sex_vote = _vote([(f.sex, f) for f in ordered if f.sex])
    if sex_vote:
        res["gender"] = sex_vote[0]
        why.append(_why("gender", sex_vote[1], f"recorded by {sex_vote[2]} of {n} sources"))
    birth_vote = _vote([(f.birth, f) for f in ordered if f.birth])
    if birth_vote:
        res["birthDate"] = birth_vote[0]
        why.append(_why("birthDate", birth_vote[1], f"recorded by {birth_vote[2]} of {n} sources"))


def _extension(w: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": SURVIVORSHIP_URL,
        "extension": [
            {"url": "element", "valueString": w["element"]},
            {"url": "source", "valueReference": {"reference": f"Patient/{w['source']}"}},
            {"url": "reason", "valueString": w["reason"]},
        ],
    }


def retired(survivor: str | None, tagged: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The golden Patient of a resident with no sources left (merged into ``survivor``, or none)."""
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {
            "tag": [
                {"system": GOLDEN_TAG_SYSTEM, "code": GOLDEN_TAG_CODE, "display": "resident (golden record)"}
            ]
        },
        "active": False,
    }
    if survivor:
        res["link"] = [{"other": {"reference": f"Patient/{survivor}"}, "type": "replaced-by"}]
    return res


def same_content(stored: dict[str, Any], built: dict[str, Any]) -> bool:
    """True when a stored golden already says what ``built`` says (meta and id aside)."""
    strip = ("id", "meta")
    a = {k: v for k, v in stored.items() if k not in strip}
    b = {k: v for k, v in built.items() if k not in strip}
    return a == b
