"""How the DICOM domain plugs into the app (see ``phix.app.DOMAINS``).

``startup`` loads ``PHIX_DICOM__*`` settings (or ``app.state.dicom_settings`` if set before the
lifespan, as the gateway and tests do), validates the routing file -- an invalid file stops the
start with every problem listed --, opens the instance store and sets ``app.state.dicom``. It
mounts the DICOMweb routes (``/dicomweb``) and the operator routes (``/dicom``) on the app, outside
the FHIR base path. There is no ``router`` under ``/fhir``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from phix.dicom import dicomweb, status
from phix.dicom.config import DicomSettings, load_dicom_settings
from phix.dicom.routing import load_routing
from phix.dicom.service import DicomService
from phix.dicom.store import InstanceStore
from phix.dicom.studies import FhirWiring
from phix.settings import Settings

log = logging.getLogger(__name__)


def dicomweb_base_url(app: FastAPI, settings: DicomSettings) -> str:
    if settings.dicomweb_base_url:
        return str(settings.dicomweb_base_url).rstrip("/")
    app_settings: Settings = app.state.settings
    public = app_settings.server.public_base_url
    base_path = app_settings.fhir.base_path
    if public:
        root = public.rstrip("/")
        if base_path and root.endswith(base_path):
            root = root[: -len(base_path)]
        return root + "/dicomweb"
    return f"http://{app_settings.server.host}:{app_settings.server.port}/dicomweb"


def mount(app: FastAPI) -> None:
    if getattr(app.state, "dicom_mounted", False):
        return
    app.include_router(dicomweb.router)
    app.include_router(status.router)
    app.state.dicom_mounted = True


# The repository's dicom/ folder (editable install / source checkout).
_SOURCE_ROOT = Path(__file__).resolve().parents[3]


def rules_path(settings: DicomSettings) -> Path:
    """``rules_file`` as given, or, when relative and absent here, the source tree's."""
    path = Path(settings.rules_file)
    if not path.is_absolute() and not path.exists() and (_SOURCE_ROOT / path).exists():
        return _SOURCE_ROOT / path
    return path


async def startup(app: FastAPI) -> None:
    settings: DicomSettings = getattr(app.state, "dicom_settings", None) or load_dicom_settings()
    config = load_routing(rules_path(settings))
    store = InstanceStore(settings.storage_root(app.state.settings.data_dir)).open()
    wiring = FhirWiring(
        listeners=app.state.listeners,
        finder=getattr(app.state, "finder", None),
        dicomweb_base_url=dicomweb_base_url(app, settings),
    )
    app.state.dicom = DicomService(settings, config, store, app.state.db, wiring)
    mount(app)
    log.info(
        "dicom domain ready",
        extra={
            "institutions": len(config.institutions),
            "sites": len(config.sites),
            "rules": len(config.rules),
        },
    )


async def shutdown(app: FastAPI) -> None:
    service = getattr(app.state, "dicom", None)
    if service is not None:
        service.store.close()
        app.state.dicom = None
