"""Search value parsers per type, with hypothesis properties where inputs are wide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phix.errors import FhirError
from phix.search import date, number, quantity, reference, token, uri
from phix.search.escape import escape, split_unescaped, unescape
from phix.search.parse import Link, Name, parse_name, parse_query
from phix.search.prefix import split_prefix

CST = timezone(timedelta(hours=8))

# ------------------------------------------------------------------------------------------ escaping

text_with_specials = st.text(alphabet=st.sampled_from(list("ab,|$\\ 陈")), max_size=12)


@given(st.lists(text_with_specials, min_size=1, max_size=4))
def test_escape_then_split_on_commas_round_trips(items: list[str]) -> None:
    joined = ",".join(escape(i) for i in items)
    assert [unescape(p) for p in split_unescaped(joined, ",")] == items


@given(text_with_specials)
def test_unescape_inverts_escape(value: str) -> None:
    assert unescape(escape(value)) == value


def test_escaped_separators_stay_in_values() -> None:
    assert split_unescaped(r"a\,b,c", ",") == [r"a\,b", "c"]
    assert split_unescaped(r"sys\|x|code", "|") == [r"sys\|x", "code"]
    assert split_unescaped(r"a\$b$c", "$") == [r"a\$b", "c"]
    assert unescape(r"a\,b\$c\|d\\e\n") == "a,b$c|d\\e\\n"


# ------------------------------------------------------------------------------------------ names


def test_parameter_names() -> None:
    assert parse_name("code:text") == Name(chain=(Link("code", "text"),))
    assert parse_name("subject:Patient.name:exact") == Name(
        chain=(Link("subject", "Patient"), Link("name", "exact"))
    )
    has = parse_name("_has:Observation:patient:_has:AuditEvent:entity:agent")
    assert has.has is not None and has.has.type == "Observation" and has.has.param == "patient"
    assert has.has.inner.has is not None and has.has.inner.has.inner == Name(chain=(Link("agent"),))
    with pytest.raises(FhirError):
        parse_name("_has:Observation:patient")


def test_result_parameters() -> None:
    q = parse_query(
        [("_count", "5"), ("_sort", "-date,_id"), ("_include", "Observation:subject:Patient"),
         ("_revinclude:iterate", "Provenance:target"), ("_summary", "count"), ("_total", "accurate"),
         ("_elements", "id,name"), ("name", "a,b"), ("_format", "json")]
    )  # fmt: skip
    assert q.count == 5 and [(k.code, k.descending) for k in q.sort] == [("date", True), ("_id", False)]
    assert [str(i) for i in q.includes] == ["Observation:subject:Patient", "Provenance:target"]
    assert q.includes[1].reverse and q.includes[1].iterate and not q.includes[0].iterate
    assert q.summary == "count" and q.total == "accurate" and q.elements == ["id", "name"]
    assert [(c.raw_name, c.values) for c in q.criteria] == [("name", ("a", "b"))]
    for bad in [("_count", "-1"), ("_summary", "maybe"), ("_total", "all"), ("_include", "Observation")]:
        with pytest.raises(FhirError):
            parse_query([bad])


# ------------------------------------------------------------------------------------------ dates


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=CST), datetime(2025, 1, 1, tzinfo=CST)),
        ("2024-12", datetime(2024, 12, 1, tzinfo=CST), datetime(2025, 1, 1, tzinfo=CST)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=CST), datetime(2024, 3, 1, tzinfo=CST)),
        ("2024-05-01T10:00", datetime(2024, 5, 1, 10, tzinfo=CST), datetime(2024, 5, 1, 10, 1, tzinfo=CST)),
        (
            "2024-05-01T10:00:00Z",
            datetime(2024, 5, 1, 10, tzinfo=UTC),
            datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC),
        ),
        (
            "2024-05-01T10:00:00.12-05:00",
            datetime(2024, 5, 1, 15, 0, 0, 120000, tzinfo=UTC),
            datetime(2024, 5, 1, 15, 0, 0, 130000, tzinfo=UTC),
        ),
    ],
)
def test_partial_precision_dates_are_ranges(text: str, low: datetime, high: datetime) -> None:
    assert date.parse_range(text) == (low, high)


@pytest.mark.parametrize(
    "text", ["2024-13", "2024-02-30", "24", "2024-05-01T25:00", "2024/05/01", "yesterday"]
)
def test_malformed_dates(text: str) -> None:
    assert date.parse_range(text) is None
    with pytest.raises(FhirError):
        date.parse("date", text, None)


@given(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_every_precision_contains_the_instant(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    iso = moment.strftime("%Y-%m-%dT%H:%M:%S")
    for text in (iso[:16] + "Z", iso + "Z"):
        found = date.parse_range(text)
        assert found is not None and found[0] <= moment < found[1], text
    local = moment.astimezone(date.LOCAL_TZ).strftime("%Y-%m-%dT%H:%M:%S")
    for text in (local[:4], local[:7], local[:10], local[:16], local):  # no zone: China time
        found = date.parse_range(text)
        assert found is not None and found[0] <= moment < found[1], text


def test_period_and_timing_ranges() -> None:
    assert date.ranges_of({"start": "2024-01-01", "end": "2024-01-31"}, "Period") == [
        (datetime(2024, 1, 1, tzinfo=CST), datetime(2024, 2, 1, tzinfo=CST))
    ]
    assert date.ranges_of({"start": "2024-01-01"}, "Period") == [(datetime(2024, 1, 1, tzinfo=CST), date.MAX)]
    timing = {"event": ["2024-03-01"], "repeat": {"boundsPeriod": {"end": "2024-04-01"}}}
    assert date.ranges_of(timing, "Timing") == [
        (datetime(2024, 3, 1, tzinfo=CST), datetime(2024, 3, 2, tzinfo=CST)),
        (date.MIN, datetime(2024, 4, 2, tzinfo=CST)),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ge2024", ("ge", "2024")), ("2024", ("eq", "2024")), ("ap5", ("ap", "5")), ("eb-3", ("eb", "-3")),
     ("ne", ("eq", "ne")), ("gtx", ("eq", "gtx"))],
)  # fmt: skip
def test_prefixes(raw: str, expected: tuple[str, str]) -> None:
    assert split_prefix(raw) == expected


# ------------------------------------------------------------------------------------------ tokens


@pytest.mark.parametrize(
    ("raw", "modifier", "expected"),
    [
        ("male", None, token.TokenValue(None, "male")),
        ("http://loinc.org|2345-7", None, token.TokenValue("http://loinc.org", "2345-7")),
        ("|2345-7", None, token.TokenValue(None, "2345-7", no_system=True)),
        ("http://loinc.org|", None, token.TokenValue("http://loinc.org", None)),
        (r"urn:x\|y|a\,b", None, token.TokenValue("urn:x|y", "a,b")),
        ("Blood Pressure", "text", token.TokenValue(None, None, text="blood pressure")),
        ("http://t|MR|123", "of-type", token.TokenValue("http://t", "MR", text="123")),
    ],
)
def test_token_forms(raw: str, modifier: str | None, expected: token.TokenValue) -> None:
    assert token.parse("code", raw, modifier) == expected


@pytest.mark.parametrize(("raw", "modifier"), [("", None), ("|", None), ("a|b|c", None), ("a|b", "of-type")])
def test_bad_tokens(raw: str, modifier: str | None) -> None:
    with pytest.raises(FhirError):
        token.parse("code", raw, modifier)


@given(st.text(min_size=1, max_size=10), st.text(min_size=1, max_size=10))
def test_any_escaped_system_and_code_round_trip(system: str, code: str) -> None:
    assert token.parse("code", f"{escape(system)}|{escape(code)}", None) == token.TokenValue(system, code)


def test_token_rows_of_datatypes() -> None:
    cc = {"coding": [{"system": "s", "code": "c", "display": "Héllo"}], "text": "Some Text"}
    assert token.rows_of(cc, "CodeableConcept") == [("s", "c", "hello"), (None, None, "some text")]
    ident = {"system": "urn:id", "value": "42", "type": {"text": "MRN"}}
    assert token.rows_of(ident, "Identifier") == [("urn:id", "42", "mrn")]
    assert token.rows_of(True, "boolean") == [(None, "true", None)]
    assert token.rows_of({"system": "phone", "value": "0594"}, "ContactPoint") == [("phone", "0594", None)]


# ------------------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("raw", "low", "high"),
    [
        ("100", "99.5", "100.5"),
        ("100.00", "99.995", "100.005"),
        ("1e2", "50", "150"),
        ("0.5", "0.45", "0.55"),
        # beyond the 28 digits of Python's default decimal context: still exact
        (
            "1.00000000000000000000000000000001",
            "1.000000000000000000000000000000005",
            "1.000000000000000000000000000000015",
        ),
        (
            "12345678901234567890123456789012345",
            "12345678901234567890123456789012344.5",
            "12345678901234567890123456789012345.5",
        ),
    ],
)
def test_number_implicit_precision(raw: str, low: str, high: str) -> None:
    value = number.parse("n", raw, None)
    assert (value.low, value.high) == (Decimal(low), Decimal(high))


@given(st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6))
def test_a_number_is_inside_its_own_precision_range(value: Decimal) -> None:
    parsed = number.parse("n", str(value), None)
    assert parsed.low <= value < parsed.high


@given(st.integers(min_value=-(10**40), max_value=10**40), st.integers(min_value=0, max_value=12))
def test_long_numbers_keep_every_digit(digits: int, places: int) -> None:
    value = Decimal(digits).scaleb(-places)
    parsed = number.parse("n", str(value), None)
    assert parsed.low < value < parsed.high
    assert parsed.high - parsed.low == Decimal(1).scaleb(int(value.as_tuple().exponent))


@pytest.mark.parametrize("raw", ["", "abc", "1,5", " 5", "nan", "Infinity"])
def test_bad_numbers(raw: str) -> None:
    with pytest.raises(FhirError):
        number.parse("n", raw, None)


def test_quantity_forms() -> None:
    q = quantity.parse("value-quantity", "gt5.4|http://unitsofmeasure.org|mmol/L", None)
    assert (q.number.prefix, q.number.value, q.system, q.code) == (
        "gt",
        Decimal("5.4"),
        "http://unitsofmeasure.org",
        "mmol/L",
    )
    q = quantity.parse("value-quantity", "5.4||mg", None)
    assert (q.system, q.code) == (None, "mg")
    q = quantity.parse("value-quantity", "5.4", None)
    assert (q.system, q.code) == (None, None)
    with pytest.raises(FhirError):
        quantity.parse("value-quantity", "5.4|mg", None)


def test_quantity_rows_canonicalise_ucum() -> None:
    rows = quantity.rows_of({"value": 250, "system": "http://unitsofmeasure.org", "code": "mg"}, "Quantity")
    assert rows == [("http://unitsofmeasure.org", "mg", 250, 250, "g", Decimal("0.250"), Decimal("0.250"))]
    rows = quantity.rows_of({"low": {"value": 2, "unit": "a"}}, "Range")
    assert rows == [(None, "a", Decimal(2), quantity.OPEN_HIGH, None, None, None)]


# ------------------------------------------------------------------------------------------ references


@pytest.mark.parametrize(
    ("raw", "modifier", "targets", "expected"),
    [
        ("Patient/1", None, (), reference.ReferenceValue("Patient", "1", None, True)),
        ("1", None, ("Patient",), reference.ReferenceValue("Patient", "1", None, True)),
        ("1", None, ("Patient", "Group"), reference.ReferenceValue(None, "1", None, True)),
        ("1", "Group", ("Patient", "Group"), reference.ReferenceValue("Group", "1", None, True)),
        ("http://phix.test/fhir/Patient/1", None, (), reference.ReferenceValue("Patient", "1", None, True)),
        ("Patient/1/_history/3", None, (), reference.ReferenceValue("Patient", "1", None, True)),
        (
            "http://other.org/fhir/Patient/9",
            None,
            (),
            reference.ReferenceValue("Patient", "9", "http://other.org/fhir", False),
        ),
        (
            "http://example.org/Questionnaire/q|1.0",
            None,
            (),
            reference.ReferenceValue("Questionnaire", "q", "http://example.org", False),
        ),
        ("urn:oid:1.2.3", None, (), reference.ReferenceValue(None, None, "urn:oid:1.2.3", False)),
    ],
)
def test_reference_forms(
    raw: str, modifier: str | None, targets: tuple[str, ...], expected: reference.ReferenceValue
) -> None:
    assert reference.parse("subject", raw, modifier, targets, "http://phix.test/fhir") == expected


def test_reference_type_modifier_must_agree() -> None:
    with pytest.raises(FhirError):
        reference.parse("subject", "Group/1", "Patient", (), None)


def test_reference_rows() -> None:
    assert reference.rows_of({"reference": "Patient/1"}) == [("Patient", "1", None)]
    assert reference.rows_of({"reference": "#contained"}) == []
    assert reference.rows_of({"reference": "https://h.cn/fhir/Patient/1"}) == [
        ("Patient", "1", "https://h.cn/fhir")
    ]
    assert reference.reference_target_type({"type": "Patient", "identifier": {"value": "x"}}) == "Patient"


# ------------------------------------------------------------------------------------------ uri


def test_uri_above_prefixes() -> None:
    assert uri.prefixes("http://acme.org/fhir/ValueSet/123") == [
        "http://acme.org/fhir/ValueSet/123",
        "http://acme.org/fhir/ValueSet",
        "http://acme.org/fhir",
        "http://acme.org",
    ]
    assert uri.prefixes("urn:oid:1.2") == ["urn:oid:1.2", "urn:oid", "urn"]
