"""Clinical content of one institution record: encounters and what happened in them.

Chronic conditions are kept on the problem list and recur in follow-up visits (with their
drugs and labs); children are vaccinated on China's national schedule at their grassroots
institution; newborns and mothers get birth and delivery stays at the maternity hospital.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from phix.synth import codes
from phix.synth.codes import DISEASES, DRUGS, LABS, concept
from phix.synth.ids import fhir_id
from phix.synth.institutions import GRASSROOTS_KINDS, Staff
from phix.synth.visits import Record

Resource = dict[str, object]
TZ = "+08:00"


@dataclass(frozen=True, slots=True)
class ImagingOrder:
    """An imaging examination done during an encounter (see :mod:`phix.synth.imaging`)."""

    record: Record
    encounter_id: str
    when: dt.datetime
    disease: str
    requester: Staff


@dataclass(slots=True)
class Chart:
    record: Record
    seed: int
    rng: random.Random
    reference: dt.date
    resources: list[Resource] = field(default_factory=list)
    imaging: list[ImagingOrder] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # ICD-10 -> Condition id
    _counter: int = 0

    def new_id(self, kind: str) -> str:
        self._counter += 1
        return fhir_id(self.seed, self.record.mrn_system, self.record.mrn, kind, self._counter)

    @property
    def patient_ref(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.record.patient_id}"}


def _ts(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S") + TZ


def _ref(kind: str, rid: str) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


def _clinician(chart: Chart, disease: str) -> Staff:
    inst, r = chart.record.inst, chart.record.resident
    if inst.kind == "maternity-hospital":
        specialty = "pediatrics" if r.age(chart.reference) < 14 or disease == "Z38.0" else "obstetrics"
    elif inst.kind in GRASSROOTS_KINDS:
        specialty = "pediatrics" if r.age(chart.reference) < 14 else "general-practice"
    elif disease in ("S52.5", "K35.8"):
        specialty = "surgery"
    else:
        specialty = "pediatrics" if r.age(chart.reference) < 14 else "internal-medicine"
    staff = chart.record.inst.staff_for(specialty)
    return staff[chart.rng.randrange(len(staff))]


def _condition(chart: Chart, icd: str, when: dt.datetime, enc: str | None, problem: bool, by: Staff) -> str:
    d = DISEASES[icd]
    cid = chart.new_id("Condition")
    res: Resource = {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": concept(
            codes.CONDITION_CLINICAL,
            "active" if d.chronic else "resolved",
            "Active" if d.chronic else "Resolved",
        ),
        "verificationStatus": concept(codes.CONDITION_VERIFICATION, "confirmed", "Confirmed"),
        "category": [
            concept(
                codes.CONDITION_CATEGORY,
                "problem-list-item" if problem else "encounter-diagnosis",
                "Problem List Item" if problem else "Encounter Diagnosis",
            )
        ],
        "code": concept(codes.ICD10, d.icd10, d.display, d.chinese),
        "subject": chart.patient_ref,
    }
    if enc:
        res["encounter"] = _ref("Encounter", enc)
    res["onsetDateTime"] = _ts(when)
    if not d.chronic:
        res["abatementDateTime"] = _ts(when + dt.timedelta(days=10))
    res["recordedDate"] = _ts(when)
    res["recorder"] = _ref("Practitioner", f"prac-{by.id}")
    chart.resources.append(res)
    return cid


def _quantity(value: float, unit: str) -> dict[str, object]:
    return {"value": value, "unit": unit, "system": codes.UCUM, "code": unit}


def _observation(
    chart: Chart,
    enc: str,
    when: dt.datetime,
    category: str,
    code: tuple[str, str],
    value: dict[str, object] | None,
    components: list[dict[str, object]] | None = None,
) -> str:
    oid = chart.new_id("Observation")
    res: Resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            concept(
                codes.OBSERVATION_CATEGORY,
                category,
                "Vital Signs" if category == "vital-signs" else "Laboratory",
            )
        ],
        "code": concept(codes.LOINC, code[0], code[1]),
        "subject": chart.patient_ref,
        "encounter": _ref("Encounter", enc),
        "effectiveDateTime": _ts(when),
        "issued": _ts(when + dt.timedelta(minutes=40)),
    }
    if value is not None:
        res["valueQuantity"] = value
    if components:
        res["component"] = components
    chart.resources.append(res)
    return oid


def _vitals(chart: Chart, enc: str, when: dt.datetime, icd: str) -> None:
    rng, r = chart.rng, chart.record.resident
    age = r.age(when.date())
    if not DISEASES[icd].chronic:
        fever = icd in ("R50.9", "J18.9", "J06.9") and rng.random() < 0.7
        temp = round(rng.uniform(37.8, 39.6) if fever else rng.uniform(36.2, 37.2), 1)
        _observation(chart, enc, when, "vital-signs", ("8310-5", "Body temperature"), _quantity(temp, "Cel"))
    if age >= 14:
        hypertensive = "I10" in r.chronic
        sys_bp = round(rng.gauss(150 if hypertensive else 122, 12))
        dia_bp = round(rng.gauss(92 if hypertensive else 78, 8))
        components: list[dict[str, object]] = [
            {
                "code": concept(codes.LOINC, "8480-6", "Systolic blood pressure"),
                "valueQuantity": _quantity(sys_bp, "mm[Hg]"),
            },
            {
                "code": concept(codes.LOINC, "8462-4", "Diastolic blood pressure"),
                "valueQuantity": _quantity(dia_bp, "mm[Hg]"),
            },
        ]
        _observation(
            chart,
            enc,
            when,
            "vital-signs",
            ("85354-9", "Blood pressure panel with all children optional"),
            None,
            components,
        )
        if hypertensive or rng.random() < 0.2:
            pulse = _quantity(round(rng.gauss(76, 9)), "/min")
            _observation(chart, enc, when, "vital-signs", ("8867-4", "Heart rate"), pulse)
    else:
        days = max((when.date() - r.birth).days, 0)
        weight = round(3.3 + min(days, 730) * 0.012 + max(days - 730, 0) * 0.006 + rng.gauss(0, 0.4), 1)
        height = round(50 + min(days, 730) * 0.05 + max(days - 730, 0) * 0.017 + rng.gauss(0, 1.5), 1)
        _observation(
            chart, enc, when, "vital-signs", ("29463-7", "Body weight"), _quantity(max(weight, 1.8), "kg")
        )
        _observation(chart, enc, when, "vital-signs", ("8302-2", "Body height"), _quantity(height, "cm"))


def _labs(chart: Chart, enc: str, when: dt.datetime, icd: str, by: Staff) -> None:
    rng = chart.rng
    keys = DISEASES[icd].labs
    if not keys or rng.random() > 0.45:
        return
    results = []
    for key in keys:
        lab = LABS[key]
        middle = (lab.low + lab.high) / 2
        value = rng.gauss(middle, (lab.high - lab.low) / 5)
        if rng.random() < 0.6:
            value = (
                lab.high * codes.ABNORMAL_FACTOR[key]
                if codes.ABNORMAL_FACTOR[key] > 1
                else lab.low * codes.ABNORMAL_FACTOR[key]
            )
            value *= rng.uniform(0.9, 1.1)
        qty = _quantity(round(value, lab.decimals) if lab.decimals else round(value), lab.unit)
        results.append(
            _ref("Observation", _observation(chart, enc, when, "laboratory", (lab.loinc, lab.display), qty))
        )
    chart.resources.append(
        {
            "resourceType": "DiagnosticReport",
            "id": chart.new_id("DiagnosticReport"),
            "status": "final",
            "category": [concept(codes.DIAGNOSTIC_SERVICE, "LAB", "Laboratory")],
            "code": concept(codes.LOINC, "11502-2", "Laboratory report", "检验报告"),
            "subject": chart.patient_ref,
            "encounter": _ref("Encounter", enc),
            "effectiveDateTime": _ts(when),
            "issued": _ts(when + dt.timedelta(hours=2)),
            "performer": [_ref("Organization", chart.record.inst.org_id)],
            "resultsInterpreter": [_ref("Practitioner", f"prac-{by.id}")],
            "result": results,
        }
    )


def _medication(
    chart: Chart, enc: str, when: dt.datetime, icd: str, condition: str, by: Staff, last: bool
) -> None:
    d = DISEASES[icd]
    for key in d.drugs[:1] if not d.chronic else d.drugs:
        drug = DRUGS[key]
        chart.resources.append(
            {
                "resourceType": "MedicationRequest",
                "id": chart.new_id("MedicationRequest"),
                "status": "active" if d.chronic and last else "completed",
                "intent": "order",
                "medicationCodeableConcept": concept(codes.ATC, drug.atc, drug.display, drug.chinese),
                "subject": chart.patient_ref,
                "encounter": _ref("Encounter", enc),
                "authoredOn": _ts(when),
                "requester": _ref("Practitioner", f"prac-{by.id}"),
                "reasonReference": [_ref("Condition", condition)],
                "dosageInstruction": [
                    {
                        "text": f"每日{drug.per_day}次，每次{drug.dose:g}{drug.unit}",
                        "timing": {"repeat": {"frequency": drug.per_day, "period": 1, "periodUnit": "d"}},
                        "doseAndRate": [{"doseQuantity": _quantity(drug.dose, drug.unit)}],
                    }
                ],
            }
        )


def _procedure(chart: Chart, enc: str, when: dt.datetime, icd: str, condition: str, by: Staff) -> None:
    snomed, display, chinese = codes.PROCEDURES[icd]
    chart.resources.append(
        {
            "resourceType": "Procedure",
            "id": chart.new_id("Procedure"),
            "status": "completed",
            "code": concept(codes.SNOMED, snomed, display, chinese),
            "subject": chart.patient_ref,
            "encounter": _ref("Encounter", enc),
            "performedDateTime": _ts(when + dt.timedelta(hours=3)),
            "performer": [{"actor": _ref("Practitioner", f"prac-{by.id}")}],
            "reasonReference": [_ref("Condition", condition)],
        }
    )


def _encounter(chart: Chart, when: dt.datetime, cls: str, by: Staff, hours: float, reason: str) -> str:
    eid = chart.new_id("Encounter")
    inst = chart.record.inst
    kind = {
        "AMB": ("11429006", "Consultation", "门诊"),
        "IMP": ("32485007", "Hospital admission", "住院"),
        "EMER": ("50849002", "Emergency room admission", "急诊"),
    }[cls]
    class_display = {"AMB": "ambulatory", "IMP": "inpatient encounter", "EMER": "emergency"}[cls]
    chart.resources.append(
        {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"system": codes.ACT_CODE, "code": cls, "display": class_display},
            "type": [concept(codes.SNOMED, kind[0], kind[1], kind[2])],
            "subject": chart.patient_ref,
            "participant": [
                {
                    "type": [concept(codes.PARTICIPATION_TYPE, "PPRF", "primary performer")],
                    "individual": _ref("Practitioner", f"prac-{by.id}"),
                }
            ],
            "period": {"start": _ts(when), "end": _ts(when + dt.timedelta(hours=hours))},
            "reasonCode": [{"text": reason}],
            "location": [{"location": _ref("Location", inst.location_id)}],
            "serviceProvider": _ref("Organization", inst.org_id),
        }
    )
    return eid


def _link_diagnosis(chart: Chart, enc_id: str, condition: str) -> None:
    for res in reversed(chart.resources):
        if res["id"] == enc_id:
            res["diagnosis"] = [{"condition": _ref("Condition", condition), "rank": 1}]
            return


def _at(rng: random.Random, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(rng.randint(8, 16), rng.choice((0, 15, 30, 45))))


def _immunizations(chart: Chart, when_of: Callable[[int], dt.date | None]) -> None:
    """Vaccinations due and given, grouped per day into one encounter."""
    rng, inst = chart.rng, chart.record.inst
    nurse = inst.staff_for("pediatrics")[0]
    days: dict[dt.date, list[codes.Vaccine]] = {}
    for v in codes.CHILD_SCHEDULE:
        day = when_of(v.age_days)
        if day is not None:
            days.setdefault(day, []).append(v)
    for day, vaccines in sorted(days.items()):
        when = _at(rng, day)
        enc = _encounter(chart, when, "AMB", nurse, 0.5, "预防接种")
        for v in vaccines:
            _immunization(chart, enc, when, v)


def _immunization(chart: Chart, enc: str, when: dt.datetime, v: codes.Vaccine) -> None:
    chart.resources.append(
        {
            "resourceType": "Immunization",
            "id": chart.new_id("Immunization"),
            "status": "completed",
            "vaccineCode": concept(codes.CVX, v.cvx, v.display, v.chinese),
            "patient": chart.patient_ref,
            "encounter": _ref("Encounter", enc),
            "occurrenceDateTime": _ts(when),
            "primarySource": True,
            "location": _ref("Location", chart.record.inst.location_id),
            "protocolApplied": [{"doseNumberPositiveInt": v.dose}],
        }
    )


def _allergy(chart: Chart) -> None:
    r = chart.record.resident
    if r.allergy is None or chart.rng.random() > 0.7:
        return
    snomed, display, chinese, category, reaction, reaction_display = codes.ALLERGENS[r.allergy]
    chart.resources.append(
        {
            "resourceType": "AllergyIntolerance",
            "id": chart.new_id("AllergyIntolerance"),
            "clinicalStatus": concept(codes.ALLERGY_CLINICAL, "active", "Active"),
            "verificationStatus": concept(codes.ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
            "type": "allergy",
            "category": [category],
            "code": concept(codes.SNOMED, snomed, display, chinese),
            "patient": chart.patient_ref,
            "recordedDate": _ts(_at(chart.rng, chart.record.registered)),
            "reaction": [{"manifestation": [concept(codes.SNOMED, reaction, reaction_display)]}],
        }
    )


def _visit(chart: Chart, when: dt.datetime, icd: str, last: bool, imaging_rate: float) -> str:
    rng, inst = chart.rng, chart.record.inst
    d = DISEASES[icd]
    by = _clinician(chart, icd)
    cls = "AMB"
    if inst.is_hospital and icd in ("J18.9", "K35.8", "O80.0", "Z38.0"):
        cls = "IMP"
    elif inst.is_hospital and icd in ("S52.5",) and rng.random() < 0.6:
        cls = "EMER"
    enc = _encounter(chart, when, cls, by, 72.0 if cls == "IMP" else 1.0, d.chinese)
    if d.chronic:
        condition = chart.problems.get(icd)
        if condition is None:
            condition = _condition(chart, icd, when, enc, True, by)
            chart.problems[icd] = condition
    else:
        condition = _condition(chart, icd, when, enc, False, by)
    _link_diagnosis(chart, enc, condition)
    if icd not in ("Z38.0",):
        _vitals(chart, enc, when, icd)
    _labs(chart, enc, when, icd, by)
    _medication(chart, enc, when, icd, condition, by, last)
    if icd in codes.PROCEDURES and (cls != "AMB" or icd == "O80.0"):
        _procedure(chart, enc, when, icd, condition, by)
    if inst.modalities and rng.random() < imaging_rate:
        chart.imaging.append(ImagingOrder(chart.record, enc, when + dt.timedelta(hours=1), icd, by))
    return enc


def chart(record: Record, seed: int, reference: dt.date, imaging_rate: float = 0.015) -> Chart:
    """Generate every clinical resource of one institution record."""
    rng = random.Random(f"{seed}/chart/{record.inst.code}/{record.mrn}")
    c = Chart(record, seed, rng, reference)
    r = record.resident
    _allergy(c)
    if record.purpose == "birth":
        when = _at(rng, r.birth)
        enc = _visit(c, when, "Z38.0", False, 0.0)
        _immunization(c, enc, when, codes.CHILD_SCHEDULE[0])  # hepatitis B birth dose
        return c
    if record.purpose == "delivery":
        _visit(c, _at(rng, record.registered), "Z34.9", False, 0.0)
        _visit(c, _at(rng, record.registered + dt.timedelta(days=1)), "O80.0", False, 0.0)
        return c
    start = record.registered
    span = (reference - start).days
    age = r.age(reference)
    grassroots = record.inst.kind in GRASSROOTS_KINDS
    if grassroots and age < 7:
        _immunizations(c, lambda days: _due(r.birth, days, start, reference, rng))
    if grassroots and age >= 60 and rng.random() < 0.35:
        for year in range(max(start.year, reference.year - 3), reference.year):
            day = dt.date(year, 10, rng.randint(1, 28))
            if start <= day <= reference:
                enc = _encounter(
                    c, _at(rng, day), "AMB", c.record.inst.staff_for("general-practice")[0], 0.5, "预防接种"
                )
                _immunization(c, enc, _at(rng, day), codes.INFLUENZA)
    visits = 1 + min(int(rng.expovariate(1.2)), 4) + (1 if r.chronic and grassroots else 0)
    days = sorted(rng.randint(0, max(span, 0)) for _ in range(visits))
    for n, offset in enumerate(days):
        when = _at(rng, start + dt.timedelta(days=offset))
        if r.chronic and rng.random() < 0.6:
            icd = rng.choice(r.chronic)
        else:
            icd = rng.choice(codes.ACUTE_CHILD if r.age(when.date()) < 14 else codes.ACUTE_ADULT)
        _visit(c, when, icd, n == len(days) - 1, imaging_rate)
    return c


def _due(birth: dt.date, age_days: int, start: dt.date, end: dt.date, rng: random.Random) -> dt.date | None:
    day = birth + dt.timedelta(days=age_days + rng.randint(0, 10))
    return day if start <= day <= end else None
