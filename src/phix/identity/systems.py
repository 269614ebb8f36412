"""Identifier systems and type codes used across phix (generator, FHIR server, patient index).

Identifier.type codes come from HL7 v2 table 0203 (``V2_0203``):

=================  =====================================================  ======
identifier         system                                                 type
=================  =====================================================  ======
resident ID        ``urn:oid:2.16.156.10011.1.1``                          NI
citizen card       ``https://fhir.putian.gov.cn/NamingSystem/citizen-card``  CZ
virtual card (QR)  ``https://fhir.putian.gov.cn/NamingSystem/virtual-card``  HC
institution MRN    ``https://fhir.putian.gov.cn/NamingSystem/{org}/mrn``     MR
visit card         ``https://fhir.putian.gov.cn/NamingSystem/{org}/visit-card``  PI
=================  =====================================================  ======

``{org}`` is the institution's short code (lower-case ASCII, e.g. ``ptsdyyy``).
"""

from __future__ import annotations

NAMING_BASE = "https://fhir.putian.gov.cn/NamingSystem"
CODESYSTEM_BASE = "https://fhir.putian.gov.cn/CodeSystem"

RESIDENT_ID = "urn:oid:2.16.156.10011.1.1"
CITIZEN_CARD = f"{NAMING_BASE}/citizen-card"
VIRTUAL_CARD = f"{NAMING_BASE}/virtual-card"
ORGANIZATION_CODE = f"{NAMING_BASE}/organization-code"
PHYSICIAN_LICENSE = f"{NAMING_BASE}/physician-license"

INSTITUTION_KIND = f"{CODESYSTEM_BASE}/institution-kind"
AFFILIATION_ROLE = f"{CODESYSTEM_BASE}/affiliation-role"

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
TYPE_RESIDENT_ID = "NI"
TYPE_CITIZEN_CARD = "CZ"
TYPE_VIRTUAL_CARD = "HC"
TYPE_MRN = "MR"
TYPE_VISIT_CARD = "PI"

DICOM_UID = "urn:dicom:uid"


def mrn_system(org_code: str) -> str:
    """The MRN identifier system of one institution."""
    return f"{NAMING_BASE}/{org_code}/mrn"


def visit_card_system(org_code: str) -> str:
    """The visit-card identifier system of one institution."""
    return f"{NAMING_BASE}/{org_code}/visit-card"


def accession_system(org_code: str) -> str:
    """The accession-number system of one institution's radiology department."""
    return f"{NAMING_BASE}/{org_code}/accession"
