"""One error model for the whole platform and one translator to FHIR OperationOutcome.

Domain code raises :class:`FhirError` with a *category* (after Blaze's anomaly categories);
:func:`to_outcome` is the only place that decides the OperationOutcome issue code and HTTP status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Category(Enum):
    """What went wrong, independent of the protocol that reports it."""

    MALFORMED = "malformed"  # cannot be parsed at all (bad JSON, bad syntax) -> 400
    INCORRECT = "incorrect"  # a request parameter or header is wrong -> 400
    INVALID = "invalid"  # parsed, but violates FHIR rules -> 422
    NOT_FOUND = "not-found"  # -> 404
    GONE = "gone"  # deleted -> 410
    NOT_ALLOWED = "not-allowed"  # method not allowed -> 405
    NOT_ACCEPTABLE = "not-acceptable"  # -> 406
    CONFLICT = "conflict"  # -> 409
    PRECONDITION = "precondition"  # If-Match / multiple matches -> 412
    TOO_LARGE = "too-large"  # -> 413
    UNSUPPORTED_MEDIA = "unsupported-media"  # -> 415
    UNSUPPORTED = "unsupported"  # not implemented -> 501
    FORBIDDEN = "forbidden"  # -> 403
    BUSY = "busy"  # -> 503
    FAULT = "fault"  # our bug -> 500


# category -> (HTTP status, default OperationOutcome issue code)
_TRANSLATION: dict[Category, tuple[int, str]] = {
    Category.MALFORMED: (400, "structure"),
    Category.INCORRECT: (400, "invalid"),
    Category.INVALID: (422, "invalid"),
    Category.NOT_FOUND: (404, "not-found"),
    Category.GONE: (410, "deleted"),
    Category.NOT_ALLOWED: (405, "not-supported"),
    Category.NOT_ACCEPTABLE: (406, "not-supported"),
    Category.CONFLICT: (409, "conflict"),
    Category.PRECONDITION: (412, "conflict"),
    Category.TOO_LARGE: (413, "too-costly"),
    Category.UNSUPPORTED_MEDIA: (415, "not-supported"),
    Category.UNSUPPORTED: (501, "not-supported"),
    Category.FORBIDDEN: (403, "forbidden"),
    Category.BUSY: (503, "transient"),
    Category.FAULT: (500, "exception"),
}


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome issue. ``expression`` holds FHIRPath-style element paths."""

    diagnostics: str
    expression: Sequence[str] = ()
    code: str | None = None  # OperationOutcome.issue.code; defaults from the category
    severity: str = "error"

    def to_json(self, default_code: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code or default_code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


@dataclass
class FhirError(Exception):
    """The platform's single exception type for client-visible errors."""

    category: Category
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __init__(
        self,
        category: Category,
        message: str | None = None,
        *,
        expression: Iterable[str] = (),
        code: str | None = None,
        issues: Iterable[Issue] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.category = category
        self.issues = list(issues)
        if message is not None:
            self.issues.insert(0, Issue(message, tuple(expression), code))
        if not self.issues:
            self.issues.append(Issue(category.value))
        self.headers = dict(headers or {})
        super().__init__(self.issues[0].diagnostics)

    @property
    def status(self) -> int:
        return _TRANSLATION[self.category][0]

    def outcome(self) -> dict[str, Any]:
        return to_outcome(self.category, self.issues)


def status_of(category: Category) -> int:
    return _TRANSLATION[category][0]


def to_outcome(category: Category, issues: Iterable[Issue]) -> dict[str, Any]:
    """The one translator: category + issues -> OperationOutcome JSON."""
    default_code = _TRANSLATION[category][1]
    return {
        "resourceType": "OperationOutcome",
        "issue": [i.to_json(default_code) for i in issues],
    }


def information_outcome(message: str, code: str = "informational") -> dict[str, Any]:
    """An OperationOutcome that reports success (for ``Prefer: return=OperationOutcome``)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": code, "diagnostics": message}],
    }
