"""Attribute matching over the index, shared by C-FIND (PS3.4 C.2.2.2) and QIDO-RS (PS3.18 8.3.4).

Supported matching: single value, universal (empty), wild card ``*`` ``?`` (case-insensitive for
PN, against every component group: ``王*`` finds ``Wang^XiaoDong=王^小东``), list of UIDs
(``\\``-separated) and ranges for DA/TM (``20240101-20241231``, ``-20240101``, ``20240101-``).
Results are DICOM JSON objects (PS3.18 F.2), tag -> {"vr", "Value"}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
import orjson

Level = Literal["PATIENT", "STUDY", "SERIES", "IMAGE"]
LEVELS: tuple[Level, ...] = ("PATIENT", "STUDY", "SERIES", "IMAGE")


class QueryError(ValueError):
    """A query the index cannot answer (unknown attribute, bad value, wrong level)."""


@dataclass(frozen=True, slots=True)
class _Field:
    level: Level
    column: str
    kind: str  # UI, DA, TM, PN, IS, CS[], or text
    tag: str
    vr: str


FIELDS: dict[str, _Field] = {
    "PatientID": _Field("PATIENT", "s.patient_id", "text", "00100020", "LO"),
    "PatientName": _Field("PATIENT", "s.patient_name", "PN", "00100010", "PN"),
    "PatientBirthDate": _Field("PATIENT", "s.patient_birth_date", "DA", "00100030", "DA"),
    "PatientSex": _Field("PATIENT", "s.patient_sex", "text", "00100040", "CS"),
    "StudyInstanceUID": _Field("STUDY", "s.study_instance_uid", "UI", "0020000D", "UI"),
    "StudyDate": _Field("STUDY", "s.study_date", "DA", "00080020", "DA"),
    "StudyTime": _Field("STUDY", "s.study_time", "TM", "00080030", "TM"),
    "AccessionNumber": _Field("STUDY", "s.accession_number", "text", "00080050", "SH"),
    "StudyID": _Field("STUDY", "s.study_id", "text", "00200010", "SH"),
    "StudyDescription": _Field("STUDY", "s.study_description", "text", "00081030", "LO"),
    "ReferringPhysicianName": _Field("STUDY", "s.referring_physician_name", "PN", "00080090", "PN"),
    "ModalitiesInStudy": _Field("STUDY", "s.modalities", "CS[]", "00080061", "CS"),
    "SeriesInstanceUID": _Field("SERIES", "i.series_instance_uid", "UI", "0020000E", "UI"),
    "Modality": _Field("SERIES", "i.modality", "text", "00080060", "CS"),
    "SeriesNumber": _Field("SERIES", "i.series_number", "IS", "00200011", "IS"),
    "SeriesDescription": _Field("SERIES", "i.series_description", "text", "0008103E", "LO"),
    "BodyPartExamined": _Field("SERIES", "i.body_part", "text", "00180015", "CS"),
    "SeriesDate": _Field("SERIES", "i.series_date", "DA", "00080021", "DA"),
    "SOPInstanceUID": _Field("IMAGE", "i.sop_instance_uid", "UI", "00080018", "UI"),
    "SOPClassUID": _Field("IMAGE", "i.sop_class_uid", "UI", "00080016", "UI"),
    "InstanceNumber": _Field("IMAGE", "i.instance_number", "IS", "00200013", "IS"),
}
BY_TAG = {f.tag: name for name, f in FIELDS.items()}

_PATIENT_TAGS = ("00100010", "00100020", "00100021", "00100030", "00100040", "00080005")
_SERIES_TAGS = ("00080021", "00080031", "00080060", "0008103E", "0020000E", "00200011", "00180015")


@dataclass
class Query:
    level: Level
    filters: list[tuple[str, str]] = field(default_factory=list)  # (keyword, DICOM-encoded value)
    limit: int = 1000
    offset: int = 0


class _Sql:
    def __init__(self) -> None:
        self.args: list[Any] = []

    def bind(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _predicate(sql: _Sql, spec: _Field, value: str) -> str:
    col = spec.column
    if spec.kind == "UI":
        uids = [u.strip() for u in value.split("\\") if u.strip()]
        return f"{col} = ANY({sql.bind(uids)}::text[])"
    if spec.kind == "CS[]":
        codes = [c.strip() for c in value.split("\\") if c.strip()]
        return f"{col} && {sql.bind(codes)}::text[]"
    if spec.kind == "IS":
        try:
            return f"{col} = {sql.bind(int(value))}"
        except ValueError:
            raise QueryError(f"{spec.tag}: {value!r} is not an integer") from None
    if spec.kind in ("DA", "TM") and "-" in value:
        low, _, high = value.partition("-")
        parts = []
        if low.strip():
            parts.append(f"{col} >= {sql.bind(low.strip())}")
        if high.strip():
            bound = high.strip() + ("" if spec.kind == "DA" else "\uffff")
            parts.append(f"{col} <= {sql.bind(bound)}")
        return " AND ".join(parts) or "true"
    if spec.kind == "PN":
        target = sql.bind(_like(value))
        if "=" in value:
            return f"{col} ILIKE {target}"
        groups = [f"split_part({col}, '=', {n})" for n in (1, 2, 3)]
        tests = [f"{g} ILIKE {target}" for g in groups]
        tests.append(f"replace(split_part({col}, '=', 2), '^', '') ILIKE {target}")
        return "(" + " OR ".join(tests) + ")"
    if "*" in value or "?" in value:
        return f"{col} LIKE {sql.bind(_like(value))}"
    return f"{col} = {sql.bind(value)}"


def _where(sql: _Sql, query: Query, allowed: tuple[Level, ...]) -> str:
    clauses = []
    for keyword, value in query.filters:
        spec = FIELDS.get(keyword)
        if spec is None:
            raise QueryError(f"matching on {keyword} is not supported")
        if query.level == "STUDY" and keyword == "Modality":
            spec = FIELDS["ModalitiesInStudy"]
        elif spec.level not in allowed:
            raise QueryError(f"{keyword} cannot be matched at the {query.level} level")
        if value == "":
            continue  # universal matching
        clauses.append(_predicate(sql, spec, value))
    return " AND ".join(clauses) or "true"


def _el(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _subset(attributes: dict[str, Any], tags: tuple[str, ...]) -> dict[str, Any]:
    return {t: attributes[t] for t in tags if t in attributes}


def _load(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    loaded: dict[str, Any] = orjson.loads(value) if isinstance(value, (str, bytes)) else dict(value)
    return loaded


async def run(conn: asyncpg.Connection, query: Query) -> list[dict[str, Any]]:
    sql = _Sql()
    page = f" LIMIT {int(query.limit)} OFFSET {int(query.offset)}"
    out: list[dict[str, Any]] = []
    if query.level == "PATIENT":
        where = _where(sql, query, ("PATIENT",))
        rows = await conn.fetch(
            "SELECT s.patient_id,"
            " (array_agg(s.attributes ORDER BY s.last_received_at DESC))[1] AS attributes,"
            " count(*) AS studies, sum(s.number_of_series) AS series, sum(s.number_of_instances) AS instances"
            f" FROM dicom_studies s WHERE {where} GROUP BY s.patient_id ORDER BY s.patient_id" + page,
            *sql.args,
        )
        for r in rows:
            item = _subset(_load(r["attributes"]), _PATIENT_TAGS)
            item["00201200"] = _el("IS", r["studies"])
            item["00201202"] = _el("IS", r["series"])
            item["00201204"] = _el("IS", r["instances"])
            out.append(item)
        return out
    if query.level == "STUDY":
        where = _where(sql, query, ("PATIENT", "STUDY"))
        rows = await conn.fetch(
            "SELECT s.attributes, s.modalities, s.number_of_series, s.number_of_instances"
            f" FROM dicom_studies s WHERE {where}"
            " ORDER BY s.study_date DESC NULLS LAST, s.study_time DESC NULLS LAST, s.study_instance_uid"
            + page,
            *sql.args,
        )
        for r in rows:
            item = _load(r["attributes"])
            item["00080056"] = _el("CS", "ONLINE")
            item["00080061"] = _el("CS", *r["modalities"])
            item["00201206"] = _el("IS", r["number_of_series"])
            item["00201208"] = _el("IS", r["number_of_instances"])
            out.append(item)
        return out
    if query.level == "SERIES":
        where = _where(sql, query, ("PATIENT", "STUDY", "SERIES"))
        rows = await conn.fetch(
            "SELECT (array_agg(i.attributes ORDER BY i.instance_number NULLS LAST))[1] AS attributes,"
            " s.attributes AS study_attributes, count(*) AS instances"
            " FROM dicom_instances i JOIN dicom_studies s ON s.study_instance_uid = i.study_instance_uid"
            f" WHERE {where} GROUP BY i.study_instance_uid, i.series_instance_uid, s.attributes"
            " ORDER BY i.study_instance_uid, min(i.series_number) NULLS LAST, i.series_instance_uid" + page,
            *sql.args,
        )
        for r in rows:
            item = _load(r["study_attributes"])
            item.update(_subset(_load(r["attributes"]), _SERIES_TAGS))
            item["00080056"] = _el("CS", "ONLINE")
            item["00201209"] = _el("IS", r["instances"])
            out.append(item)
        return out
    where = _where(sql, query, LEVELS)
    rows = await conn.fetch(
        "SELECT i.attributes, s.attributes AS study_attributes"
        " FROM dicom_instances i JOIN dicom_studies s ON s.study_instance_uid = i.study_instance_uid"
        f" WHERE {where} ORDER BY i.study_instance_uid, i.series_number NULLS LAST, i.series_instance_uid,"
        " i.instance_number NULLS LAST, i.sop_instance_uid" + page,
        *sql.args,
    )
    for r in rows:
        item = _load(r["study_attributes"])
        item.update(_load(r["attributes"]))
        item["00080056"] = _el("CS", "ONLINE")
        out.append(item)
    return out


def keyword_of(key: str) -> str | None:
    """A QIDO query key (keyword or 8-hex-digit tag) -> the keyword we match on, if supported."""
    if key in FIELDS:
        return key
    return BY_TAG.get(key.upper())
