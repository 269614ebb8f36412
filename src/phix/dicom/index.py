"""The PostgreSQL index over the instance store: ``dicom_instances`` and ``dicom_studies``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from phix.dicom.header import InstanceRecord

# DICOM RequestedProcedurePriority -> FHIR request-priority
_PRIORITY = {"STAT": "stat", "HIGH": "urgent", "MEDIUM": "routine", "ROUTINE": "routine", "LOW": "routine"}

# Attributes of the patient and study modules (kept on the study row for QIDO / C-FIND).
_STUDY_LEVEL = frozenset(
    {
        "00080005", "00080020", "00080030", "00080050", "00080080", "00080090", "00080201",
        "00081030", "00100010", "00100020", "00100021", "00100030", "00100040", "0020000D",
        "00200010",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who sent an instance, and when it arrived."""

    sending_ae: str | None
    institution: str | None
    received_at: datetime


def fhir_priority(dicom_priority: str | None) -> str:
    return _PRIORITY.get((dicom_priority or "").upper(), "routine")


_INSERT_INSTANCE = """
INSERT INTO dicom_instances (
    sop_instance_uid, sop_class_uid, study_instance_uid, series_instance_uid, transfer_syntax_uid,
    instance_number, series_number, modality, body_part, series_description, series_date, series_time,
    path, size, sending_ae, institution, received_at, attributes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18::jsonb)
ON CONFLICT (sop_instance_uid) DO NOTHING
"""

_UPSERT_STUDY = """
INSERT INTO dicom_studies AS s (
    study_instance_uid, patient_id, patient_name, patient_birth_date, patient_sex, study_date,
    study_time, accession_number, study_id, study_description, referring_physician_name,
    institution, sending_ae, priority, state, first_received_at, last_received_at, attributes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'receiving', $15, $15, $16::jsonb)
ON CONFLICT (study_instance_uid) DO UPDATE SET
    patient_id = EXCLUDED.patient_id,
    patient_name = EXCLUDED.patient_name,
    patient_birth_date = EXCLUDED.patient_birth_date,
    patient_sex = EXCLUDED.patient_sex,
    study_date = EXCLUDED.study_date,
    study_time = EXCLUDED.study_time,
    accession_number = EXCLUDED.accession_number,
    study_id = EXCLUDED.study_id,
    study_description = EXCLUDED.study_description,
    referring_physician_name = EXCLUDED.referring_physician_name,
    institution = coalesce(s.institution, EXCLUDED.institution),
    sending_ae = coalesce(s.sending_ae, EXCLUDED.sending_ae),
    priority = CASE
        WHEN array_position(ARRAY['stat','asap','urgent','routine'], EXCLUDED.priority)
           < array_position(ARRAY['stat','asap','urgent','routine'], s.priority)
        THEN EXCLUDED.priority ELSE s.priority END,
    state = 'receiving',
    last_received_at = greatest(s.last_received_at, EXCLUDED.last_received_at),
    attributes = EXCLUDED.attributes
"""

_AGGREGATE = """
UPDATE dicom_studies s SET
    modalities = a.modalities, body_parts = a.body_parts,
    number_of_series = a.series, number_of_instances = a.instances
FROM (
    SELECT study_instance_uid,
           coalesce(array_agg(DISTINCT modality) FILTER (WHERE modality IS NOT NULL), '{}') AS modalities,
           coalesce(array_agg(DISTINCT body_part) FILTER (WHERE body_part IS NOT NULL), '{}') AS body_parts,
           count(DISTINCT series_instance_uid) AS series, count(*) AS instances
    FROM dicom_instances WHERE study_instance_uid = ANY($1::text[]) GROUP BY study_instance_uid
) a
WHERE s.study_instance_uid = a.study_instance_uid
"""


async def insert(
    conn: asyncpg.Connection,
    entries: Sequence[tuple[InstanceRecord, str, Provenance]],
) -> None:
    """Index instances (record, relative path, provenance) and refresh their studies, atomically."""
    if not entries:
        return
    async with conn.transaction():
        await conn.executemany(
            _INSERT_INSTANCE,
            [
                (
                    r.sop_instance_uid, r.sop_class_uid, r.study_instance_uid, r.series_instance_uid,
                    r.transfer_syntax_uid, r.instance_number, r.series_number, r.modality, r.body_part,
                    r.series_description, r.series_date, r.series_time, path, r.size, p.sending_ae,
                    p.institution, p.received_at, orjson.dumps(r.attributes).decode(),
                )
                for r, path, p in entries
            ],
        )  # fmt: skip
        latest: dict[str, tuple[InstanceRecord, Provenance]] = {}
        for record, _, prov in entries:
            latest[record.study_instance_uid] = (record, prov)
        for study_uid, (r, p) in latest.items():
            study_attrs = {k: v for k, v in r.attributes.items() if k in _STUDY_LEVEL}
            await conn.execute(
                _UPSERT_STUDY,
                study_uid, r.patient_id, r.patient_name, r.patient_birth_date, r.patient_sex,
                r.study_date, r.study_time, r.accession_number, r.study_id, r.study_description,
                r.referring_physician_name, p.institution, p.sending_ae, fhir_priority(r.priority),
                p.received_at, orjson.dumps(study_attrs).decode(),
            )  # fmt: skip
        await conn.execute(_AGGREGATE, list(latest))


async def touch(conn: asyncpg.Connection, study_uids: Sequence[str], moment: datetime) -> None:
    """A duplicate arrived for these studies: receiving again (routes are rechecked on completion)."""
    await conn.execute(
        "UPDATE dicom_studies SET state = 'receiving', last_received_at = greatest(last_received_at, $2)"
        " WHERE study_instance_uid = ANY($1::text[])",
        list(study_uids),
        moment,
    )


@dataclass(frozen=True, slots=True)
class StoredInstance:
    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    path: str


async def stored_instances(
    conn: asyncpg.Connection,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> list[StoredInstance]:
    rows = await conn.fetch(
        "SELECT sop_instance_uid, sop_class_uid, series_instance_uid, transfer_syntax_uid, path"
        " FROM dicom_instances WHERE study_instance_uid = $1"
        " AND ($2::text IS NULL OR series_instance_uid = $2)"
        " AND ($3::text IS NULL OR sop_instance_uid = $3)"
        " ORDER BY series_number NULLS LAST, series_instance_uid, instance_number NULLS LAST,"
        " sop_instance_uid",
        study_uid,
        series_uid,
        sop_uid,
    )
    return [StoredInstance(**dict(r)) for r in rows]
