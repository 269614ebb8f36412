"""Imaging studies: the ImagingStudy resource (and a radiology report where the hospital reads
its own images) plus real DICOM Part 10 files with a matching patient module.

Grassroots institutions take DX and US images but have no radiologist: their studies carry no
report and are what the teleconsultation workflow sends to the specialist hospitals.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from array import array
from dataclasses import dataclass

from phix.identity import systems
from phix.synth import codes
from phix.synth.clinical import ImagingOrder, Resource
from phix.synth.codes import concept
from phix.synth.ids import dicom_uid, fhir_id, hex_token
from phix.synth.names import pinyin_name

SOP_CLASSES = {
    "CT": ("1.2.840.10008.5.1.4.1.1.2", "CT Image Storage"),
    "MR": ("1.2.840.10008.5.1.4.1.1.4", "MR Image Storage"),
    "DX": ("1.2.840.10008.5.1.4.1.1.1.1", "Digital X-Ray Image Storage - For Presentation"),
    "US": ("1.2.840.10008.5.1.4.1.1.6.1", "Ultrasound Image Storage"),
}
MODALITY_DISPLAY = {
    "CT": "Computed Tomography",
    "MR": "Magnetic Resonance",
    "DX": "Digital Radiography",
    "US": "Ultrasound",
}
# DICOM body part -> (SNOMED code, display, Chinese)
BODY_PARTS = {
    "CHEST": ("51185008", "Thoracic structure", "胸部"),
    "WRIST": ("74670003", "Wrist joint structure", "腕关节"),
    "ABDOMEN": ("818983003", "Abdomen", "腹部"),
    "KNEE": ("72696002", "Knee region structure", "膝关节"),
    "LSPINE": ("122496007", "Lumbar spine structure", "腰椎"),
    "KIDNEY": ("64033007", "Kidney structure", "肾脏"),
    "HEAD": ("69536005", "Head structure", "头颅"),
}
_EXAMS: dict[str, tuple[tuple[str, str], ...]] = {
    "J18.9": (("DX", "CHEST"), ("CT", "CHEST")),
    "J20.9": (("DX", "CHEST"),),
    "J06.9": (("DX", "CHEST"),),
    "J44.9": (("CT", "CHEST"), ("DX", "CHEST")),
    "R50.9": (("DX", "CHEST"),),
    "J45.9": (("DX", "CHEST"),),
    "S52.5": (("DX", "WRIST"),),
    "K35.8": (("US", "ABDOMEN"), ("CT", "ABDOMEN")),
    "A09": (("US", "ABDOMEN"),),
    "K29.5": (("US", "ABDOMEN"),),
    "M17.9": (("DX", "KNEE"), ("MR", "KNEE")),
    "M54.5": (("MR", "LSPINE"), ("DX", "LSPINE")),
    "I10": (("US", "ABDOMEN"), ("CT", "HEAD"), ("MR", "HEAD")),
    "E11.9": (("US", "ABDOMEN"),),
    "E78.5": (("US", "ABDOMEN"),),
    "N18.9": (("US", "KIDNEY"),),
    "Z34.9": (("US", "ABDOMEN"),),
}
_FALLBACK = {"DX": "CHEST", "US": "ABDOMEN", "CT": "HEAD", "MR": "KNEE"}
_FINDINGS = {
    "CHEST": "双肺纹理清晰，未见明显实变影，心影大小正常。",
    "WRIST": "桡骨远端骨皮质不连续，断端轻度移位。",
    "ABDOMEN": "肝胆胰脾未见明显异常。",
    "KNEE": "膝关节间隙变窄，关节边缘骨质增生。",
    "LSPINE": "腰椎生理曲度变直，L4/5椎间盘膨出。",
    "KIDNEY": "双肾皮质回声增强，皮髓质分界欠清。",
    "HEAD": "脑实质未见明显异常密度影。",
}


@dataclass(frozen=True, slots=True)
class Instance:
    uid: str
    number: int


@dataclass(frozen=True, slots=True)
class Series:
    uid: str
    number: int
    description: str
    instances: tuple[Instance, ...]


@dataclass(frozen=True, slots=True)
class Study:
    order: ImagingOrder
    uid: str
    accession: str
    modality: str
    body_part: str
    charset: str  # ISO_IR 192 or GB18030
    series: tuple[Series, ...]
    resource_id: str
    report_id: str | None

    @property
    def n_instances(self) -> int:
        return sum(len(s.instances) for s in self.series)


def plan(order: ImagingOrder, seed: int) -> Study:
    """Choose the examination and derive every UID for one imaging order."""
    rec = order.record
    inst = rec.inst
    key = f"{seed}/imaging/{inst.code}/{order.encounter_id}"
    rng = random.Random(key)
    options = [e for e in _EXAMS.get(order.disease, (("DX", "CHEST"),)) if e[0] in inst.modalities]
    modality, body_part = (
        rng.choice(options) if options else (inst.modalities[0], _FALLBACK[inst.modalities[0]])
    )
    study_uid = dicom_uid(key, "study")
    accession = f"{order.when:%y%m%d}{int(hex_token(8, key, 'acc'), 16) % 10**8:08d}"
    layout = {
        "CT": ((("平扫", 4),), (("平扫", 4), ("薄层重建", 3))),
        "MR": ((("T1WI", 3), ("T2WI", 3)),),
        "DX": ((("正位", 1),), (("正位", 1), ("侧位", 1))),
        "US": ((("灰阶", 3),),),
    }[modality]
    chosen = rng.choice(layout)
    series = []
    for n, (description, count) in enumerate(chosen, start=1):
        series_uid = dicom_uid(key, "series", n)
        instances = tuple(Instance(dicom_uid(key, "sop", n, k), k) for k in range(1, count + 1))
        series.append(Series(series_uid, n, description, instances))
    has_radiologist = inst.is_hospital and any(s.specialty == "radiology" for s in inst.staff)
    return Study(
        order=order,
        uid=study_uid,
        accession=accession,
        modality=modality,
        body_part=body_part,
        charset="GB18030" if rng.random() < 0.15 else "ISO_IR 192",
        series=tuple(series),
        resource_id=fhir_id(seed, "ImagingStudy", inst.code, study_uid),
        report_id=fhir_id(seed, "DiagnosticReport", inst.code, study_uid) if has_radiologist else None,
    )


def _ts(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S") + "+08:00"


def description(study: Study) -> str:
    return f"{BODY_PARTS[study.body_part][2]}{study.modality}检查"


def imaging_study(study: Study) -> Resource:
    order, rec = study.order, study.order.record
    inst = rec.inst
    site = BODY_PARTS[study.body_part]
    res: Resource = {
        "resourceType": "ImagingStudy",
        "id": study.resource_id,
        "identifier": [
            {"use": "official", "system": systems.DICOM_UID, "value": f"urn:oid:{study.uid}"},
            {
                "type": concept(systems.V2_0203, "ACSN", "Accession ID"),
                "system": systems.accession_system(inst.code),
                "value": study.accession,
            },
        ],
        "status": "available",
        "modality": [
            {"system": codes.DCM, "code": study.modality, "display": MODALITY_DISPLAY[study.modality]}
        ],
        "subject": {"reference": f"Patient/{rec.patient_id}"},
        "encounter": {"reference": f"Encounter/{order.encounter_id}"},
        "started": _ts(order.when),
        "referrer": {"reference": f"Practitioner/prac-{order.requester.id}"},
        "numberOfSeries": len(study.series),
        "numberOfInstances": study.n_instances,
        "location": {"reference": f"Location/{inst.location_id}"},
        "description": description(study),
        "series": [
            {
                "uid": s.uid,
                "number": s.number,
                "modality": {
                    "system": codes.DCM,
                    "code": study.modality,
                    "display": MODALITY_DISPLAY[study.modality],
                },
                "description": s.description,
                "numberOfInstances": len(s.instances),
                "bodySite": {"system": codes.SNOMED, "code": site[0], "display": site[1]},
                "started": _ts(order.when),
                "instance": [
                    {
                        "uid": i.uid,
                        "sopClass": {
                            "system": "urn:ietf:rfc:3986",
                            "code": f"urn:oid:{SOP_CLASSES[study.modality][0]}",
                        },
                        "number": i.number,
                    }
                    for i in s.instances
                ],
            }
            for s in study.series
        ],
    }
    if inst.is_hospital and inst.modalities:
        res["endpoint"] = [{"reference": f"Endpoint/ep-{inst.code}-dicomweb"}]
    return res


def report(study: Study) -> Resource | None:
    if study.report_id is None:
        return None
    order, rec = study.order, study.order.record
    radiologist = rec.inst.staff_for("radiology")[0]
    return {
        "resourceType": "DiagnosticReport",
        "id": study.report_id,
        "status": "final",
        "category": [concept(codes.DIAGNOSTIC_SERVICE, "RAD", "Radiology")],
        "code": concept(codes.LOINC, "18748-4", "Diagnostic imaging study", description(study)),
        "subject": {"reference": f"Patient/{rec.patient_id}"},
        "encounter": {"reference": f"Encounter/{order.encounter_id}"},
        "effectiveDateTime": _ts(order.when),
        "issued": _ts(order.when + dt.timedelta(hours=4)),
        "performer": [{"reference": f"Organization/{rec.inst.org_id}"}],
        "resultsInterpreter": [{"reference": f"Practitioner/prac-{radiologist.id}"}],
        "imagingStudy": [{"reference": f"ImagingStudy/{study.resource_id}"}],
        "conclusion": _FINDINGS[study.body_part],
    }


def dicom_person_name(family: str, given: str) -> str:
    """``Chen^Wei=陈^伟`` for Chinese names, ``Chen^Wei`` for names recorded in pinyin."""
    if family.isascii() and given.isascii():
        return f"{family}^{given}"
    alpha_family, alpha_given = pinyin_name(family, given)
    return f"{alpha_family}^{alpha_given}={family}^{given}"


def pixel_data(rows: int, cols: int, bits: int, rng: random.Random, number: int) -> bytes:
    """A disc phantom with noise: small, deterministic, plausible-looking."""
    cy, cx = rows / 2 + rng.uniform(-4, 4), cols / 2 + rng.uniform(-4, 4)
    radius2 = (min(rows, cols) * (0.28 + 0.03 * number)) ** 2
    peak = (1 << bits) - 1
    inside, outside = int(peak * 0.55), int(peak * 0.08)
    noise = max(peak // 50, 1)
    randint = rng.randint
    values = array("H" if bits > 8 else "B")
    for y in range(rows):
        dy2 = (y - cy) ** 2
        for x in range(cols):
            base = inside if dy2 + (x - cx) ** 2 < radius2 else outside
            values.append(base + randint(0, noise))
    if values.itemsize > 1 and sys.byteorder == "big":  # pragma: no cover
        values.byteswap()
    return values.tobytes()
