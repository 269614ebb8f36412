"""FHIR operations of the patient index, mounted under the FHIR base by the integration module."""

from __future__ import annotations

from fastapi import APIRouter

from phix.mpi.operations import card, match, pix, steward

router = APIRouter()
for _module in (match, pix, card, steward):
    router.include_router(_module.router)
