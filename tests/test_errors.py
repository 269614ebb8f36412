"""The one error model and its one translator to OperationOutcome + HTTP status."""

from __future__ import annotations

import pytest

from phix.errors import Category, FhirError, Issue, information_outcome, status_of, to_outcome

# Blaze's anomaly categories, as HTTP status and OperationOutcome issue code
EXPECTED = {
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


def test_every_category_is_translated() -> None:
    assert set(EXPECTED) == set(Category)


@pytest.mark.parametrize(("category", "expected"), EXPECTED.items(), ids=[c.value for c in EXPECTED])
def test_translation(category: Category, expected: tuple[int, str]) -> None:
    status, code = expected
    error = FhirError(category, "something")
    assert error.status == status_of(category) == status
    assert error.outcome() == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": "something"}],
    }


def test_issues_keep_expression_code_and_order() -> None:
    error = FhirError(
        Category.INVALID,
        "first",
        expression=["Patient.active"],
        code="value",
        issues=[Issue("second", ("Patient.name[0].given",)), Issue("note", severity="warning")],
        headers={"ETag": 'W/"2"'},
    )
    assert error.headers == {"ETag": 'W/"2"'}
    assert str(error) == "first"
    assert error.outcome()["issue"] == [
        {"severity": "error", "code": "value", "diagnostics": "first", "expression": ["Patient.active"]},
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": "second",
            "expression": ["Patient.name[0].given"],
        },
        {"severity": "warning", "code": "invalid", "diagnostics": "note"},
    ]


def test_an_error_without_message_still_has_an_issue() -> None:
    error = FhirError(Category.GONE)
    assert error.outcome()["issue"] == [{"severity": "error", "code": "deleted", "diagnostics": "gone"}]
    assert error.headers == {}


def test_to_outcome_of_several_issues() -> None:
    outcome = to_outcome(Category.MALFORMED, [Issue("a"), Issue("b", ("x",), "required")])
    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "structure", "diagnostics": "a"},
            {"severity": "error", "code": "required", "diagnostics": "b", "expression": ["x"]},
        ],
    }


def test_information_outcome() -> None:
    assert information_outcome("Deleted Patient/1") == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": "Deleted Patient/1"}],
    }
