"""Operator API for the gateway (JSON, under ``/dicom``): studies received, routing per destination.

* ``GET  /dicom/studies/{study}``          what was received, its ImagingStudy, its routes
* ``GET  /dicom/routes``                   jobs (filters: study, destination, status, limit)
* ``GET  /dicom/destinations``             per destination: pending / delivering / delivered /
                                           failed, oldest waiting job, next attempt, last error
* ``POST /dicom/routes/{id}/retry``        make a waiting or failed job due now
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from phix.dicom import queue as route_queue
from phix.errors import Category, FhirError

router = APIRouter(prefix="/dicom", tags=["DICOM gateway"])

_STATUSES = {"pending", "delivering", "delivered", "failed"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _pool(request: Request) -> Any:
    service = getattr(request.app.state, "dicom", None)
    if service is None:
        raise FhirError(Category.BUSY, "The DICOM service is not started")
    return service.db.pool


@router.get("/studies/{study}", summary="A received study and its routing")
async def study_status(request: Request, study: str) -> Response:
    async with _pool(request).acquire() as conn:
        row = await conn.fetchrow(
            "SELECT study_instance_uid, patient_id, patient_name, study_date, accession_number, institution,"
            " sending_ae, modalities, body_parts, number_of_series, number_of_instances, priority, state,"
            " first_received_at, last_received_at, completed_at, imaging_study_id, subject"
            " FROM dicom_studies WHERE study_instance_uid = $1",
            study,
        )
        if row is None:
            raise FhirError(Category.NOT_FOUND, f"Study {study} has not been received")
        routes = await route_queue.jobs(conn, study=study)
    body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dict(row).items()}
    body["routes"] = routes
    return _json(body)


@router.get("/routes", summary="Routing jobs")
async def routes(
    request: Request,
    study: str | None = None,
    destination: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> Response:
    if status is not None and status not in _STATUSES:
        raise FhirError(
            Category.INCORRECT, f"status must be one of {sorted(_STATUSES)}", expression=["status"]
        )
    async with _pool(request).acquire() as conn:
        found = await route_queue.jobs(
            conn, study=study, destination=destination, status=status, limit=max(1, min(limit, 1000))
        )
    return _json(found)


@router.get("/destinations", summary="Routing status per destination")
async def destinations(request: Request) -> Response:
    async with _pool(request).acquire() as conn:
        return _json(await route_queue.summary(conn))


@router.post("/routes/{route_id}/retry", summary="Retry a routing job now")
async def retry(request: Request, route_id: int) -> Response:
    async with _pool(request).acquire() as conn:
        if not await route_queue.retry(conn, route_id):
            raise FhirError(
                Category.CONFLICT, f"Route {route_id} is not waiting or failed (or does not exist)"
            )
    return _json({"id": route_id, "status": "pending"})
