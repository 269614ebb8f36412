"""Study completion: the FHIR side of a received study, and its routing jobs, in one transaction.

A study is complete when the association that sent it is released (or, after an abort or a
crash, when it has been quiet for ``stable_seconds``; STOW-RS completes at the end of the
request). Completing it:

1. finds the subject: the sending institution's Patient with MRN = PatientID (search engine),
   or creates a minimal Patient with that MRN (the patient index then links it to a resident);
2. writes the ImagingStudy through the repository (updating the one already known for this Study
   Instance UID, keeping elements it does not own) and the DICOMweb Endpoint it points to;
3. evaluates the routing rules (contracts = OrganizationAffiliation) and creates or re-opens one
   queue job per destination.

Everything commits together; a study completed twice writes no new version if nothing changed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from phix.dicom import lookup, mapping
from phix.dicom import queue as route_queue
from phix.dicom.routing import CONTRACTED, RoutingConfig, StudyFacts, evaluate
from phix.identity.systems import accession_system
from phix.storage.context import RequestContext
from phix.storage.repository import Repository, WriteListener

log = logging.getLogger(__name__)

_STUDY_LOCK = 0x64636D32  # "dcm2": serialises completions of one study across processes
_CONTEXT = RequestContext(request_id="dicom", client="phix-dicom-gateway")


@dataclass(frozen=True, slots=True)
class Completed:
    study_instance_uid: str
    imaging_study_id: str
    subject: str
    routes: list[route_queue.RouteSpec]
    written: bool


@dataclass
class FhirWiring:
    """What completion needs from the application (listeners, finder, addresses)."""

    listeners: list[WriteListener]
    finder: lookup.Finder | None
    dicomweb_base_url: str


def _stable_id(prefix: str, *parts: str) -> str:
    return prefix + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


async def _ensure_endpoint(repo: Repository, address: str) -> None:
    wanted = mapping.endpoint(address)
    current = await lookup.read(repo.conn, "Endpoint", mapping.ENDPOINT_ID)
    if current is None or not mapping.same_content(current, {**wanted, "id": mapping.ENDPOINT_ID}):
        await repo.update("Endpoint", mapping.ENDPOINT_ID, wanted)


async def _subject(repo: Repository, wiring: FhirWiring, study: dict[str, Any], config: RoutingConfig) -> str:
    if study.get("subject"):
        return str(study["subject"])
    institution = config.institution(study.get("institution"))
    mrn = institution.mrn if institution else "urn:phix:dicom:unknown-issuer"
    patient_id = study.get("patient_id")
    if patient_id:
        found = await lookup.patients_by_identifier(repo.conn, wiring.finder, mrn, patient_id)
        if found:
            if len(found) > 1:
                log.warning("several patients share an MRN", extra={"system": mrn, "count": len(found)})
            return f"Patient/{found[0]}"
        res_id = _stable_id("dcm-", mrn, patient_id)
    else:  # no PatientID: one placeholder Patient per study, for the patient index to resolve
        res_id = _stable_id("dcm-", "study", study["study_instance_uid"])
    org = institution.organization_ref if institution else None
    if org and not await lookup.exists(repo.conn, org):
        org = None
    existing = await repo.current("Patient", res_id)
    if existing is None or existing.deleted:
        await repo.update("Patient", res_id, mapping.minimal_patient(study, mrn, org), method="POST")
    return f"Patient/{res_id}"


async def _routes(
    conn: asyncpg.Connection, wiring: FhirWiring, config: RoutingConfig, study: dict[str, Any]
) -> list[route_queue.RouteSpec]:
    institution = config.institution(study.get("institution"))
    priority = study.get("priority") or "routine"
    if institution and study.get("accession_number"):
        ordered = await lookup.order_priority(
            conn, wiring.finder, accession_system(institution.code), study["accession_number"]
        )
        priority = ordered or priority
    facts = StudyFacts(
        institution=study.get("institution"),
        ae_title=study.get("sending_ae"),
        modalities=frozenset(study.get("modalities") or ()),
        body_parts=frozenset(study.get("body_parts") or ()),
        priority=priority,
    )
    specs: dict[str, route_queue.RouteSpec] = {}
    for target in evaluate(config, facts):
        if target.destination != CONTRACTED:
            names = [target.destination]
        elif institution is None:
            names = []
        else:
            orgs = await lookup.contracted_organizations(
                conn,
                wiring.finder,
                institution.organization_ref,
                config.contract_role,
                datetime.now(UTC).date(),
            )
            names = [site.name for org in orgs for site in config.sites_of(org)]
            if not names:
                log.warning(
                    "no contracted reading site",
                    extra={"institution": institution.code, "study": study["study_instance_uid"]},
                )
        for name in names:
            specs.setdefault(name, route_queue.RouteSpec(name, target.rule, target.deidentify, priority))
    return list(specs.values())


async def complete_study(
    conn: asyncpg.Connection, study_uid: str, config: RoutingConfig, wiring: FhirWiring
) -> Completed | None:
    """Write the study's ImagingStudy and routing jobs; None if the study is not indexed."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _STUDY_LOCK, study_uid)
        row = await conn.fetchrow("SELECT * FROM dicom_studies WHERE study_instance_uid = $1", study_uid)
        if row is None:
            return None
        study = dict(row)
        study["attributes"] = orjson.loads(study["attributes"]) if study["attributes"] else {}
        instances = [
            dict(r)
            for r in await conn.fetch(
                "SELECT sop_instance_uid, sop_class_uid, series_instance_uid, instance_number, series_number,"
                " modality, body_part, series_description, series_date, series_time"
                " FROM dicom_instances WHERE study_instance_uid = $1"
                " ORDER BY series_number NULLS LAST, instance_number NULLS LAST, sop_instance_uid",
                study_uid,
            )
        ]
        repo = Repository(conn, _CONTEXT, wiring.listeners)
        await _ensure_endpoint(repo, wiring.dicomweb_base_url)
        subject = await _subject(repo, wiring, study, config)
        res_id = study.get("imaging_study_id")
        if not res_id:
            found = await lookup.imaging_studies_by_uid(conn, wiring.finder, study_uid)
            res_id = found[0] if found else _stable_id("dcm-", "study", study_uid)
        existing = await lookup.read(conn, "ImagingStudy", res_id)
        institution = config.institution(study.get("institution"))
        resource = mapping.imaging_study(
            study,
            instances,
            subject=subject,
            accession_system=accession_system(institution.code) if institution else None,
            existing=existing,
        )
        written = existing is None or not mapping.same_content(existing, resource)
        if written:
            await repo.update("ImagingStudy", res_id, resource, method="PUT" if existing else "POST")
        subject = str(resource["subject"].get("reference") or subject)
        routes = await _routes(conn, wiring, config, study)
        await route_queue.enqueue(conn, study_uid, routes)
        await conn.execute(
            "UPDATE dicom_studies SET state = 'complete', completed_at = now(), imaging_study_id = $2,"
            " subject = $3 WHERE study_instance_uid = $1",
            study_uid,
            res_id,
            subject,
        )
    return Completed(study_uid, res_id, subject, routes, written)


async def quiet_studies(conn: asyncpg.Connection, seconds: float, exclude: set[str]) -> list[str]:
    """Studies still 'receiving' with no instance for ``seconds`` (aborted or crashed senders)."""
    rows = await conn.fetch(
        "SELECT study_instance_uid FROM dicom_studies WHERE state = 'receiving'"
        " AND last_received_at < now() - make_interval(secs => $1) ORDER BY last_received_at LIMIT 100",
        seconds,
    )
    return [r["study_instance_uid"] for r in rows if r["study_instance_uid"] not in exclude]
