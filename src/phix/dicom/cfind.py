"""C-FIND identifiers <-> index queries (the SCP's query service)."""

from __future__ import annotations

import logging
from typing import Any, cast

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from phix.dicom.query import FIELDS, Level, Query

log = logging.getLogger(__name__)

_SKIP = {"QueryRetrieveLevel", "SpecificCharacterSet"}


def _text(element: DataElement) -> str:
    value = element.value
    if value is None:
        return ""
    if isinstance(value, (list, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def to_query(level: str, identifier: Dataset, limit: int = 1000) -> Query:
    """Matching keys with a value become filters; unsupported ones are ignored (PS3.4 C.2.2.1)."""
    filters: list[tuple[str, str]] = []
    for element in identifier:
        keyword = element.keyword
        if not keyword or keyword in _SKIP or element.VR == "SQ":
            continue
        value = _text(element)
        if keyword not in FIELDS:
            if value:
                log.info("C-FIND matching key ignored", extra={"keyword": keyword})
            continue
        spec = FIELDS[keyword]
        if level == "STUDY" and spec.level in ("SERIES", "IMAGE"):
            continue
        if level == "SERIES" and spec.level == "IMAGE":
            continue
        if level == "PATIENT" and spec.level != "PATIENT":
            continue
        if value and value != "*":
            filters.append((keyword, value))
    return Query(cast(Level, level), filters, limit=limit)


def to_response(level: str, identifier: Dataset, match: dict[str, Any]) -> Dataset:
    """The requested keys, filled from a DICOM JSON match (absent ones sent empty)."""
    try:
        found = Dataset.from_json(match)
    except Exception as exc:  # a malformed stored value must not break the whole response
        log.warning("stored attributes not convertible", extra={"error": str(exc)})
        found = Dataset()
    out = Dataset()
    out.SpecificCharacterSet = "ISO_IR 192"
    for element in identifier:
        if element.keyword in _SKIP:
            continue
        if element.tag in found:
            out[element.tag] = found[element.tag]
        else:
            out.add_new(element.tag, element.VR, None)
    out.QueryRetrieveLevel = level
    return out
