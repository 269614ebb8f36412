"""Where each resident is registered, and the Patient record each institution keeps.

Each registration gets the institution's next MRN (and often a visit card) and the front-desk
error model's version of the resident's demographics.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass

from phix.identity import systems
from phix.synth import frontdesk
from phix.synth.ids import fhir_id, uuid_for
from phix.synth.institutions import GRASSROOTS_KINDS, Institution, all_institutions, by_code
from phix.synth.population import Household, Resident

EHR_START = dt.date(2012, 1, 1)  # the earliest electronic records in the synthetic network

_DISTRICT_HOSPITALS = {
    "350302": ("ptsdyyy", "ptszyy", "ptscxqyy"),
    "350303": ("pthjyy", "ptsdyyy", "ptszyy"),
    "350304": ("ptxyfsyy", "ptslcqzyy", "ptsdyyy"),
    "350305": ("ptsdeyy", "ptsxyqyy", "ptxyfsyy"),
    "350322": ("xyxyy", "xyxzyy"),
}
_MATERNITY = {"350322": "xyxfybjy"}
_CITY_WIDE = ("ptsdyyy", "ptxyfsyy", "ptszyy")


@dataclass(slots=True)
class Record:
    """One institution's Patient record of one resident."""

    resident: Resident
    inst: Institution
    serial: int
    mrn: str
    visit_card: str | None
    registered: dt.date
    purpose: str  # birth, delivery, care
    recorded: frontdesk.Recorded
    citizen_card: str | None
    virtual_card: str | None
    patient_id: str
    patient_uuid: str

    @property
    def mrn_system(self) -> str:
        return systems.mrn_system(self.inst.code)


def _grassroots(resident: Resident, rng: random.Random) -> Institution | None:
    address = resident.address
    local = [
        i
        for i in all_institutions()
        if i.kind in GRASSROOTS_KINDS and i.town == address.town and (i.locality in (None, address.locality))
    ]
    clinics = [i for i in local if i.kind == "village-clinic"]
    if clinics and rng.random() < 0.6:
        return clinics[0]
    centres = [i for i in local if i.kind != "village-clinic"]
    if centres:
        return centres[0]
    nearby = [
        i
        for i in all_institutions()
        if i.kind in ("township-health-centre", "community-health-centre")
        and i.district_code == address.district_code
    ]
    return rng.choice(nearby) if nearby and rng.random() < 0.5 else None


class Registry:
    """Assigns institution records; keeps each institution's MRN counter."""

    def __init__(self, seed: int, reference: dt.date, errors: frontdesk.ErrorModel) -> None:
        self.seed = seed
        self.reference = reference
        self.errors = errors
        self._serial: defaultdict[str, int] = defaultdict(int)

    def _date_between(self, rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
        span = (end - start).days
        return start + dt.timedelta(days=rng.randint(0, max(span, 0)))

    def _plan(self, r: Resident, rng: random.Random) -> list[tuple[Institution, dt.date, str]]:
        ref = self.reference
        plan: list[tuple[Institution, dt.date, str]] = []
        first_care = max(r.birth, EHR_START)
        maternity = by_code()[_MATERNITY.get(r.address.district_code, "ptsfybjy")]
        if r.mother and (ref - r.birth).days < 10 * 365 and rng.random() < 0.6:
            plan.append((maternity, r.birth, "birth"))
        for born in r.children_born:
            if (ref - born).days < 10 * 365 and (born - r.birth).days > 18 * 365 and rng.random() < 0.6:
                plan.append((maternity, born - dt.timedelta(days=1), "delivery"))
        age = r.age(ref)
        home = _grassroots(r, rng)
        if home and (age < 7 or r.chronic or rng.random() < 0.7):
            start = r.birth + dt.timedelta(days=rng.randint(0, 20)) if age < 7 else first_care
            plan.append((home, self._date_between(rng, start, ref), "care"))
        weights = (10, 45, 30, 15) if age >= 60 or r.chronic else (20, 50, 22, 8)
        count = rng.choices((0, 1, 2, 3), weights)[0]
        options = list(_DISTRICT_HOSPITALS[r.address.district_code])
        if rng.random() < 0.1:
            options.append(rng.choice(_CITY_WIDE))
        taken = {inst.code for inst, _, _ in plan}
        for code in rng.sample(options, min(count, len(options))):
            if code not in taken:
                taken.add(code)
                plan.append((by_code()[code], self._date_between(rng, first_care, ref), "care"))
        if not plan:
            plan.append((by_code()[options[0]], self._date_between(rng, first_care, ref), "care"))
        plan.sort(key=lambda p: (p[1], p[0].code))
        return plan

    def records(self, household: Household) -> list[Record]:
        rng = random.Random(f"{self.seed}/visits/{household.key}")
        result: list[Record] = []
        for r in household.members:
            for inst, registered, purpose in self._plan(r, rng):
                result.append(self._record(r, inst, registered, purpose, rng))
        return result

    def _record(
        self, r: Resident, inst: Institution, registered: dt.date, purpose: str, rng: random.Random
    ) -> Record:
        serial = self._serial[inst.code]
        self._serial[inst.code] = serial + 1
        mrn = inst.mrn(serial)
        recorded = frontdesk.apply(r, self.errors, rng, registered, newborn_at_birth=purpose == "birth")
        card = inst.visit_card(serial) if inst.card_prefix and rng.random() < 0.7 else None
        return Record(
            resident=r,
            inst=inst,
            serial=serial,
            mrn=mrn,
            visit_card=card,
            registered=registered,
            purpose=purpose,
            recorded=recorded,
            citizen_card=r.citizen_card
            if r.citizen_card and inst.is_hospital and rng.random() < 0.5
            else None,
            virtual_card=r.virtual_card if r.virtual_card and rng.random() < 0.5 else None,
            patient_id=fhir_id(self.seed, "Patient", inst.code, mrn),
            patient_uuid=uuid_for(self.seed, "Patient", inst.code, mrn),
        )


def _identifier(system: str, value: str, code: str, display: str, text: str) -> dict[str, object]:
    return {
        "use": "official" if code in ("NI", "MR") else "usual",
        "type": {"coding": [{"system": systems.V2_0203, "code": code, "display": display}], "text": text},
        "system": system,
        "value": value,
    }


def patient(record: Record, with_id: bool) -> dict[str, object]:
    """The institution's Patient resource (no ``id`` in bundles: it is a conditional update)."""
    rec = record.recorded
    inst = record.inst
    res: dict[str, object] = {"resourceType": "Patient"}
    if with_id:
        res["id"] = record.patient_id
    ids = [_identifier(record.mrn_system, record.mrn, systems.TYPE_MRN, "Medical record number", "病历号")]
    if record.visit_card:
        ids.append(
            _identifier(
                systems.visit_card_system(inst.code),
                record.visit_card,
                systems.TYPE_VISIT_CARD,
                "Patient internal identifier",
                "就诊卡号",
            )
        )
    if rec.id_value:
        ids.append(
            _identifier(
                systems.RESIDENT_ID,
                rec.id_value,
                systems.TYPE_RESIDENT_ID,
                "National unique individual identifier",
                "居民身份证号",
            )
        )
    if record.citizen_card:
        ids.append(
            _identifier(
                systems.CITIZEN_CARD,
                record.citizen_card,
                systems.TYPE_CITIZEN_CARD,
                "Citizenship Card",
                "市民卡号",
            )
        )
    if record.virtual_card:
        ids.append(
            _identifier(
                systems.VIRTUAL_CARD,
                record.virtual_card,
                systems.TYPE_VIRTUAL_CARD,
                "Health Card Number",
                "电子健康卡",
            )
        )
    res["identifier"] = ids
    res["active"] = True
    name: dict[str, object] = {"use": rec.name_use, "text": rec.text}
    if rec.name_use == "official":
        name["family"] = rec.family
        name["given"] = [rec.given]
    res["name"] = [name]
    if rec.phone:
        res["telecom"] = [{"system": "phone", "value": rec.phone, "use": "mobile"}]
    res["gender"] = rec.sex
    res["birthDate"] = rec.birth.isoformat()
    res["address"] = [record.resident.address.fhir()]
    res["managingOrganization"] = {"reference": f"Organization/{inst.org_id}", "display": inst.name}
    return res
