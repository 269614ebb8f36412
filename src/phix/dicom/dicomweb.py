"""DICOMweb on the API (PS3.18): STOW-RS, QIDO-RS and WADO-RS under ``/dicomweb``.

* STOW-RS ``POST /dicomweb/studies[/{study}]``: ``multipart/related; type="application/dicom"``
  (or one ``application/dicom`` body). The sending institution is named by the
  ``X-Phix-Institution`` header or the ``institution`` query parameter. Each instance is checked
  (:func:`phix.dicom.encoding.scan`), written durably, indexed; the studies are then completed
  (ImagingStudy, routing) before the answer. 200 all stored, 202 some failed, 409 none stored;
  the DICOM JSON answer lists ReferencedSOPSequence / FailedSOPSequence (FailureReason 0xC000
  corrupt, 0xA900 study mismatch).
* QIDO-RS ``GET /dicomweb/studies``, ``/series``, ``/instances`` and the study/series-scoped
  forms: matching keys by keyword or tag, ``limit``, ``offset``; ``includefield`` and
  ``fuzzymatching`` are accepted and every stored attribute is returned.
* WADO-RS ``GET /dicomweb/studies/{study}[/series/{series}[/instances/{sop}]]``: the instances as
  stored (``transfer-syntax=*``; uncompressed instances are converted on request), and
  ``.../metadata`` (DICOM JSON; bulk data elements are left out).

Errors are OperationOutcomes through the platform's one error model.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pydicom
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from phix.dicom import index
from phix.dicom import multipart as mp
from phix.dicom import query as q
from phix.dicom.encoding import CorruptDataset, file_meta, scan, split_part10
from phix.dicom.service import DicomService
from phix.dicom.store import key_of
from phix.errors import Category, FhirError

router = APIRouter(prefix="/dicomweb", tags=["DICOMweb"])

DICOM_JSON = "application/dicom+json"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_UNCOMPRESSED = {"1.2.840.10008.1.2", EXPLICIT_LE, "1.2.840.10008.1.2.2"}
_QIDO_CONTROL = {"limit", "offset", "includefield", "fuzzymatching"}


def _service(request: Request) -> DicomService:
    service = getattr(request.app.state, "dicom", None)
    if service is None:
        raise FhirError(Category.BUSY, "The DICOM service is not started")
    return service  # type: ignore[no-any-return]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/dicomweb"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=DICOM_JSON, headers=headers)


# -- STOW-RS ---------------------------------------------------------------------------------------


def _sop_item(sop_class: str, sop_uid: str, tag: str, element: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if sop_class:
        item["00081150"] = {"vr": "UI", "Value": [sop_class]}
    if sop_uid:
        item["00081155"] = {"vr": "UI", "Value": [sop_uid]}
    item[tag] = element
    return item


def _failure(sop_class: str, sop_uid: str, reason: int) -> dict[str, Any]:
    return _sop_item(sop_class, sop_uid, "00081197", {"vr": "US", "Value": [reason]})


async def _stow(request: Request, study: str | None) -> Response:
    service = _service(request)
    code = request.headers.get("x-phix-institution") or request.query_params.get("institution")
    if not code:
        raise FhirError(
            Category.INCORRECT,
            "Name the sending institution with the X-Phix-Institution header or ?institution=",
        )
    institution = service.config.institution(code)
    if institution is None:
        raise FhirError(
            Category.FORBIDDEN, f"Institution {code!r} may not store (not in the routing configuration)"
        )
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    kind, params = mp.media_type(content_type)
    if kind == "application/dicom":
        parts = [({"content-type": content_type}, body)]
    elif kind == "multipart/related":
        if params.get("type", "application/dicom").lower() != "application/dicom":
            raise FhirError(
                Category.UNSUPPORTED_MEDIA, "Only application/dicom parts are accepted (no metadata+bulk)"
            )
        try:
            parts = mp.parse(body, content_type)
        except mp.MultipartError as exc:
            raise FhirError(Category.MALFORMED, f"Malformed multipart body: {exc}") from None
    else:
        raise FhirError(Category.UNSUPPORTED_MEDIA, 'Send multipart/related; type="application/dicom"')
    stored: list[tuple[str, dict[str, Any]]] = []  # (study UID, ReferencedSOPSequence item)
    failed: list[dict[str, Any]] = []
    arrivals = []
    now = datetime.now(UTC)
    ae = institution.ae_titles[0]
    for headers, content in parts:
        part_type, _ = mp.media_type(headers.get("content-type", "application/dicom"))
        if part_type != "application/dicom":
            failed.append(_failure("", "", 0xC000))
            continue
        try:
            part = split_part10(content)
            scanned = scan(part.dataset, part.transfer_syntax_uid)
            if scanned.sop_instance_uid != part.sop_instance_uid:
                raise CorruptDataset("SOP Instance UID differs from the file meta")
        except CorruptDataset:
            failed.append(_failure("", "", 0xC000))
            continue
        if study and scanned.study_instance_uid != study:
            failed.append(_failure(part.sop_class_uid, part.sop_instance_uid, 0xA900))
            continue
        key = key_of(part.sop_instance_uid)
        meta = file_meta(part.sop_class_uid, part.sop_instance_uid, part.transfer_syntax_uid, ae)
        created = await asyncio.to_thread(service.store.write_incoming, key, (meta, part.dataset))
        if created:
            arrivals.append((key, index.Provenance(ae, institution.code, now)))
        url = f"{_base(request)}/studies/{scanned.study_instance_uid}/series/{scanned.series_instance_uid}"
        url += f"/instances/{part.sop_instance_uid}"
        item = _sop_item(part.sop_class_uid, part.sop_instance_uid, "00081190", {"vr": "UR", "Value": [url]})
        stored.append((scanned.study_instance_uid, item))
    ingested = await service.ingest(arrivals)
    studies = list(dict.fromkeys(uid for uid, _ in stored))
    duplicates = set(studies) - set(ingested.studies)
    if duplicates:
        await service.touch(duplicates, now)
    await service.complete(studies)
    answer: dict[str, Any] = {}
    if len(studies) == 1:
        answer["00081190"] = {"vr": "UR", "Value": [f"{_base(request)}/studies/{studies[0]}"]}
    if failed:
        answer["00081198"] = {"vr": "SQ", "Value": failed}
    if stored:
        answer["00081199"] = {"vr": "SQ", "Value": [item for _, item in stored]}
    status = 200 if not failed else (202 if stored else 409)
    return _json(answer, status)


@router.post("/studies", summary="STOW-RS: store instances")
async def stow(request: Request) -> Response:
    return await _stow(request, None)


@router.post("/studies/{study}", summary="STOW-RS: store instances of one study")
async def stow_study(request: Request, study: str) -> Response:
    return await _stow(request, study)


# -- QIDO-RS ---------------------------------------------------------------------------------------


def _qido_query(request: Request, level: q.Level, scope: dict[str, str]) -> q.Query:
    filters = list(scope.items())
    warnings = []
    limit, offset = 100, 0
    for key, value in request.query_params.multi_items():
        if key in _QIDO_CONTROL:
            try:
                if key == "limit":
                    limit = max(1, min(int(value), 1000))
                elif key == "offset":
                    offset = max(0, int(value))
            except ValueError:
                raise FhirError(Category.INCORRECT, f"{key} must be an integer", expression=[key]) from None
            if key == "fuzzymatching" and value.lower() == "true":
                warnings.append("fuzzymatching")
            continue
        keyword = q.keyword_of(key)
        if keyword is None:
            raise FhirError(
                Category.INCORRECT, f"Unknown or unsupported query attribute {key!r}", expression=[key]
            )
        filters.append((keyword, value))
    request.state.qido_warnings = warnings
    return q.Query(level, filters, limit=limit, offset=offset)


def _retrieve_url(base: str, item: dict[str, Any], level: q.Level) -> str:
    def uid(tag: str) -> str:
        return str((item.get(tag) or {}).get("Value", [""])[0])

    url = f"{base}/studies/{uid('0020000D')}"
    if level in ("SERIES", "IMAGE"):
        url += f"/series/{uid('0020000E')}"
    if level == "IMAGE":
        url += f"/instances/{uid('00080018')}"
    return url


async def _qido(request: Request, level: q.Level, scope: dict[str, str]) -> Response:
    service = _service(request)
    query = _qido_query(request, level, scope)
    try:
        async with service.db.pool.acquire() as conn:
            rows = await q.run(conn, query)
    except q.QueryError as exc:
        raise FhirError(Category.INCORRECT, str(exc)) from None
    base = _base(request)
    for item in rows:
        item["00081190"] = {"vr": "UR", "Value": [_retrieve_url(base, item, level)]}
    headers = {}
    if request.state.qido_warnings:
        headers["Warning"] = (
            '299 phix: "The fuzzymatching parameter is not supported.'
            ' Only literal matching has been performed."'
        )
    return _json(rows, headers=headers)


@router.get("/studies", summary="QIDO-RS: search for studies")
async def search_studies(request: Request) -> Response:
    return await _qido(request, "STUDY", {})


@router.get("/series", summary="QIDO-RS: search for series")
async def search_series(request: Request) -> Response:
    return await _qido(request, "SERIES", {})


@router.get("/instances", summary="QIDO-RS: search for instances")
async def search_instances(request: Request) -> Response:
    return await _qido(request, "IMAGE", {})


@router.get("/studies/{study}/series", summary="QIDO-RS: series of a study")
async def search_study_series(request: Request, study: str) -> Response:
    return await _qido(request, "SERIES", {"StudyInstanceUID": study})


@router.get("/studies/{study}/instances", summary="QIDO-RS: instances of a study")
async def search_study_instances(request: Request, study: str) -> Response:
    return await _qido(request, "IMAGE", {"StudyInstanceUID": study})


@router.get("/studies/{study}/series/{series}/instances", summary="QIDO-RS: instances of a series")
async def search_series_instances(request: Request, study: str, series: str) -> Response:
    return await _qido(request, "IMAGE", {"StudyInstanceUID": study, "SeriesInstanceUID": series})


# -- WADO-RS ---------------------------------------------------------------------------------------


def _wanted_syntax(accept: str) -> str | None:
    """The transfer syntax asked for: None = as stored ('*' or not given)."""
    if not accept.strip():
        return None
    for alternative in accept.split(","):
        kind, params = mp.media_type(alternative)
        inner = params.get("type", "application/dicom").lower()
        if kind in ("multipart/related", "*/*", "multipart/*") and inner in ("application/dicom", "*/*"):
            syntax = params.get("transfer-syntax", "*")
            return None if syntax == "*" else syntax
    raise FhirError(Category.NOT_ACCEPTABLE, 'WADO-RS answers multipart/related; type="application/dicom"')


async def _located(
    request: Request, study: str, series: str | None, sop: str | None
) -> list[tuple[Any, Any]]:
    service = _service(request)
    async with service.db.pool.acquire() as conn:
        found = await index.stored_instances(conn, study, series, sop)
    if not found:
        raise FhirError(Category.NOT_FOUND, "No such study, series or instance")
    located = []
    for item in found:
        path = service.store.locate(item.path, key_of(item.sop_instance_uid))
        if path is None:
            raise FhirError(
                Category.FAULT, f"Instance {item.sop_instance_uid} is indexed but missing on disk"
            )
        located.append((item, path))
    return located


def _transcode(data: bytes, syntax: str) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(syntax)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, implicit_vr=syntax == "1.2.840.10008.1.2", little_endian=True)
    return out.getvalue()


async def _wado(request: Request, study: str, series: str | None = None, sop: str | None = None) -> Response:
    wanted = _wanted_syntax(request.headers.get("accept", ""))
    located = await _located(request, study, series, sop)
    if wanted is not None:
        for item, _ in located:
            if item.transfer_syntax_uid != wanted and not (
                item.transfer_syntax_uid in _UNCOMPRESSED and wanted in ("1.2.840.10008.1.2", EXPLICIT_LE)
            ):
                raise FhirError(
                    Category.NOT_ACCEPTABLE,
                    f"Instance {item.sop_instance_uid} is stored as {item.transfer_syntax_uid};"
                    " ask for it with transfer-syntax=* or that syntax",
                )
    boundary = mp.new_boundary()
    parts: list[tuple[str, Callable[[], Awaitable[bytes]]]] = []
    for item, path in located:
        syntax = wanted or item.transfer_syntax_uid

        async def load(
            path: Any = path, convert: bool = syntax != item.transfer_syntax_uid, ts: str = syntax
        ) -> bytes:
            data = await asyncio.to_thread(path.read_bytes)
            return await asyncio.to_thread(_transcode, data, ts) if convert else data

        parts.append((f"application/dicom; transfer-syntax={syntax}", load))
    media = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return StreamingResponse(mp.stream(boundary, parts), media_type=media)


def _metadata(path: Any) -> dict[str, Any]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    out: dict[str, Any] = ds.to_json_dict(
        bulk_data_threshold=1024, bulk_data_element_handler=lambda _: "", suppress_invalid_tags=True
    )
    return {k: v for k, v in out.items() if "BulkDataURI" not in v}


async def _wado_metadata(
    request: Request, study: str, series: str | None = None, sop: str | None = None
) -> Response:
    located = await _located(request, study, series, sop)
    documents = await asyncio.to_thread(lambda: [_metadata(path) for _, path in located])
    return _json(documents)


@router.get("/studies/{study}", summary="WADO-RS: retrieve a study")
async def retrieve_study(request: Request, study: str) -> Response:
    return await _wado(request, study)


@router.get("/studies/{study}/metadata", summary="WADO-RS: study metadata")
async def study_metadata(request: Request, study: str) -> Response:
    return await _wado_metadata(request, study)


@router.get("/studies/{study}/series/{series}", summary="WADO-RS: retrieve a series")
async def retrieve_series(request: Request, study: str, series: str) -> Response:
    return await _wado(request, study, series)


@router.get("/studies/{study}/series/{series}/metadata", summary="WADO-RS: series metadata")
async def series_metadata(request: Request, study: str, series: str) -> Response:
    return await _wado_metadata(request, study, series)


@router.get("/studies/{study}/series/{series}/instances/{sop}", summary="WADO-RS: retrieve an instance")
async def retrieve_instance(request: Request, study: str, series: str, sop: str) -> Response:
    return await _wado(request, study, series, sop)


@router.get("/studies/{study}/series/{series}/instances/{sop}/metadata", summary="WADO-RS: instance metadata")
async def instance_metadata(request: Request, study: str, series: str, sop: str) -> Response:
    return await _wado_metadata(request, study, series, sop)
