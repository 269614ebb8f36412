"""``phix synth``: stream the population through visits, charts and imaging into bundles,
NDJSON, DICOM folders, the ground truth and a manifest."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from phix.synth import bundles, clinical, dicomfiles, imaging, visits
from phix.synth.bundles import InstitutionBundles
from phix.synth.frontdesk import ErrorModel
from phix.synth.institutions import all_institutions
from phix.synth.population import PopulationGenerator, Resident
from phix.synth.shared import shared_resources

REFERENCE_DATE = dt.date(2026, 6, 30)
FORMAT_VERSION = 1

GROUND_TRUTH_COLUMNS = (
    "mrn_system",
    "mrn",
    "institution",
    "institution_kind",
    "patient_fullurl",
    "patient_id",
    "bundle",
    "resident_key",
    "household",
    "purpose",
    "registered",
    "recorded_name",
    "recorded_birth_date",
    "recorded_sex",
    "recorded_resident_id",
    "error_kinds",
)
RESIDENT_COLUMNS = (
    "resident_key",
    "household",
    "role",
    "name",
    "family",
    "given",
    "sex",
    "birth_date",
    "resident_id",
    "legacy_id15",
    "mobile",
    "old_mobile",
    "household_phone",
    "citizen_card",
    "virtual_card",
    "district_code",
    "town",
    "locality",
    "address",
    "mother_key",
    "same_name_dob_as",
    "chronic_conditions",
)


@dataclass(frozen=True, slots=True)
class SynthConfig:
    seed: int
    residents: int
    out: Path
    reference: dt.date = REFERENCE_DATE
    dicom: bool = True
    dicom_limit: int | None = None  # write DICOM files for the first N studies only
    ndjson: bool = True
    errors: ErrorModel = field(default_factory=ErrorModel)
    imaging_rate: float = 0.015
    bundle_patients: int = 200
    bundle_entries: int = 8000
    progress: bool = False


class _Output:
    def __init__(self, cfg: SynthConfig) -> None:
        self.cfg = cfg
        self.ndjson: dict[str, IO[bytes]] = {}
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.per_inst: dict[str, Counter[str]] = {i.code: Counter() for i in all_institutions()}
        self.dicom_counts: Counter[str] = Counter()

    def write_ndjson(self, resource_type: str, data: bytes) -> None:
        if not self.cfg.ndjson:
            return
        handle = self.ndjson.get(resource_type)
        if handle is None:
            path = self.cfg.out / "ndjson" / f"{resource_type}.ndjson"
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.ndjson[resource_type] = path.open("wb")
        handle.write(data)
        handle.write(b"\n")

    def close(self) -> None:
        for handle in self.ndjson.values():
            handle.close()


_KEEP = frozenset({"README.md", ".gitignore", ".gitattributes"})


def _prepare(out: Path) -> None:
    if out.exists() and any(p.name not in _KEEP for p in out.iterdir()):
        if not (out / "manifest.json").exists():
            raise FileExistsError(f"{out} is not empty and holds no phix synth output")
        for name in ("bundles", "ndjson", "dicom"):
            shutil.rmtree(out / name, ignore_errors=True)
        for stale in out.glob(".load-state-*.json"):
            stale.unlink()
    (out / "bundles").mkdir(parents=True, exist_ok=True)


def _resident_row(r: Resident) -> list[str]:
    a = r.address
    return [
        r.key,
        r.household,
        r.role,
        r.name,
        r.family,
        r.given,
        r.sex,
        r.birth.isoformat(),
        r.id18,
        r.id15 or "",
        r.phone or "",
        r.old_phone or "",
        r.household_phone,
        r.citizen_card or "",
        r.virtual_card or "",
        a.district_code,
        a.town,
        a.locality,
        a.text,
        r.mother or "",
        r.same_name_dob_as or "",
        ";".join(r.chronic),
    ]


def _write_shared(out: _Output) -> int:
    entries = []
    for res in shared_resources():
        data = orjson.dumps(res)
        out.write_ndjson(str(res["resourceType"]), data)
        out.counts[str(res["resourceType"])] += 1
        entries.append(bundles.put_entry(str(res["resourceType"]), str(res["id"]), data))
    (out.cfg.out / "bundles" / bundles.SHARED_BUNDLE).write_bytes(bundles.bundle_bytes("shared", entries))
    return len(entries)


def _record_group(out: _Output, record: visits.Record, studies: list[imaging.Study]) -> list[bytes]:
    """Serialise one record's Patient and clinical resources into bundle entries (and NDJSON)."""
    cfg = out.cfg
    chart = clinical.chart(record, cfg.seed, cfg.reference, cfg.imaging_rate)
    patient_ndjson = orjson.dumps(visits.patient(record, with_id=True))
    out.write_ndjson("Patient", patient_ndjson)
    group = [
        bundles.conditional_patient_entry(
            record.patient_uuid,
            record.mrn_system,
            record.mrn,
            orjson.dumps(visits.patient(record, with_id=False)),
        )
    ]
    local_ref = f'"reference":"Patient/{record.patient_id}"'.encode()
    bundle_ref = f'"reference":"urn:uuid:{record.patient_uuid}"'.encode()
    resources = chart.resources
    for order in chart.imaging:
        study = imaging.plan(order, cfg.seed)
        studies.append(study)
        resources.append(imaging.imaging_study(study))
        report = imaging.report(study)
        if report is not None:
            resources.append(report)
    inst_counts = out.per_inst[record.inst.code]
    inst_counts["records"] += 1
    inst_counts["Patient"] += 1
    out.counts["Patient"] += 1
    for res in resources:
        kind = str(res["resourceType"])
        data = orjson.dumps(res)
        out.write_ndjson(kind, data)
        group.append(bundles.put_entry(kind, str(res["id"]), data.replace(local_ref, bundle_ref)))
        out.counts[kind] += 1
        inst_counts[kind] += 1
    return group


def generate(cfg: SynthConfig) -> dict[str, Any]:
    """Write the whole synthetic data set under ``cfg.out`` and return the manifest."""
    _prepare(cfg.out)
    out = _Output(cfg)
    population = PopulationGenerator(cfg.seed, cfg.reference)
    registry = visits.Registry(cfg.seed, cfg.reference, cfg.errors)
    writers = {
        i.code: InstitutionBundles(
            cfg.out / "bundles", cfg.seed, i.code, cfg.bundle_patients, cfg.bundle_entries
        )
        for i in all_institutions()
    }
    shared_count = _write_shared(out)
    progress = _progress(cfg)
    households = 0
    try:
        with (
            (cfg.out / "ground_truth.csv").open("w", newline="", encoding="utf-8") as gt_file,
            (cfg.out / "residents.csv").open("w", newline="", encoding="utf-8") as res_file,
        ):
            ground_truth = csv.writer(gt_file, lineterminator="\n")
            ground_truth.writerow(GROUND_TRUTH_COLUMNS)
            residents = csv.writer(res_file, lineterminator="\n")
            residents.writerow(RESIDENT_COLUMNS)
            for household in population.residents(cfg.residents):
                households += 1
                for member in household.members:
                    residents.writerow(_resident_row(member))
                for record in registry.records(household):
                    studies: list[imaging.Study] = []
                    group = _record_group(out, record, studies)
                    bundle = writers[record.inst.code].add(group)
                    _ground_truth_row(ground_truth, record, bundle)
                    for kind in record.recorded.errors:
                        out.errors[kind] += 1
                    for study in studies:
                        _write_dicom(out, study)
                if progress is not None:
                    progress.update(len(household.members))
        for writer in writers.values():
            writer.flush()
    finally:
        out.close()
        if progress is not None:
            progress.close()
    manifest = _manifest(cfg, out, writers, households, shared_count)
    (cfg.out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    return manifest


def _progress(cfg: SynthConfig) -> Any:
    if not cfg.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=cfg.residents, unit="resident", desc="synth")


def _ground_truth_row(writer: Any, record: visits.Record, bundle: str) -> None:
    rec = record.recorded
    writer.writerow(
        [
            record.mrn_system,
            record.mrn,
            record.inst.code,
            record.inst.kind,
            f"urn:uuid:{record.patient_uuid}",
            record.patient_id,
            f"bundles/{bundle}",
            record.resident.key,
            record.resident.household,
            record.purpose,
            record.registered.isoformat(),
            rec.text,
            rec.birth.isoformat(),
            rec.sex,
            rec.id_value or "",
            ";".join(rec.errors),
        ]
    )


def _write_dicom(out: _Output, study: imaging.Study) -> None:
    cfg = out.cfg
    out.dicom_counts["studies_planned"] += 1
    out.per_inst[study.order.record.inst.code]["imaging_studies"] += 1
    if not cfg.dicom or (cfg.dicom_limit is not None and out.dicom_counts["studies"] >= cfg.dicom_limit):
        return
    out.dicom_counts["bytes"] += dicomfiles.write_study(cfg.out / "dicom", study)
    out.dicom_counts["studies"] += 1
    out.dicom_counts["instances"] += study.n_instances


def _manifest(
    cfg: SynthConfig, out: _Output, writers: dict[str, InstitutionBundles], households: int, shared: int
) -> dict[str, Any]:
    institutions = {}
    for inst in all_institutions():
        counts = out.per_inst[inst.code]
        institutions[inst.code] = {
            "name": inst.name,
            "kind": inst.kind,
            "records": counts.pop("records", 0),
            "imaging_studies": counts.pop("imaging_studies", 0),
            "bundles": writers[inst.code].written,
            "resources": dict(sorted(counts.items())),
        }
    return {
        "generator": "phix.synth",
        "format_version": FORMAT_VERSION,
        "seed": cfg.seed,
        "residents": cfg.residents,
        "households": households,
        "reference_date": cfg.reference.isoformat(),
        "error_model": asdict(cfg.errors),
        "imaging_rate": cfg.imaging_rate,
        "counts": {
            "records": sum(i["records"] for i in institutions.values()),
            "resources": dict(sorted(out.counts.items())),
            "resources_total": sum(out.counts.values()),
            "shared_resources": shared,
            "bundles": 1 + sum(len(w.written) for w in writers.values()),
            "imaging_studies": out.dicom_counts["studies_planned"],
            "dicom_studies": out.dicom_counts["studies"],
            "dicom_instances": out.dicom_counts["instances"],
            "dicom_bytes": out.dicom_counts["bytes"],
        },
        "errors": {kind: out.errors[kind] for kind in sorted(out.errors)},
        "institutions": institutions,
        "files": {
            "shared_bundle": f"bundles/{bundles.SHARED_BUNDLE}",
            "ground_truth": "ground_truth.csv",
            "residents": "residents.csv",
            "ndjson": "ndjson/" if cfg.ndjson else None,
            "dicom": "dicom/" if cfg.dicom else None,
        },
    }
