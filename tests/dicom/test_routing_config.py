"""Routing rules: validation with clear errors, evaluation semantics, the checked-in file."""

from __future__ import annotations

from pathlib import Path

import pytest

from phix.dicom.routing import (
    CONTRACTED,
    RoutingConfigError,
    StudyFacts,
    Target,
    evaluate,
    load_routing,
    parse_routing,
)

REPO = Path(__file__).resolve().parents[2]

BASE = """
sites:
  - {name: north, transport: orthanc-rest, url: "http://127.0.0.1:8042", organization: Organization/org-n}
  - {name: south, transport: c-store, ae_title: SOUTH, host: 127.0.0.1, port: 4242}
institutions:
  - {code: clinic, ae_titles: [CLINIC_DX, CLINIC_US]}
  - {code: county, ae_titles: [COUNTY_CT]}
"""


def facts(**kw: object) -> StudyFacts:
    values: dict[str, object] = {
        "institution": "clinic",
        "ae_title": "CLINIC_DX",
        "modalities": frozenset({"DX"}),
        "body_parts": frozenset({"CHEST"}),
        "priority": "routine",
    }
    values.update(kw)
    return StudyFacts(**values)  # type: ignore[arg-type]


def test_the_checked_in_rules_are_valid() -> None:
    config = load_routing(REPO / "dicom" / "routing.yaml")
    assert {s.name for s in config.sites} == {"ptsdyyy", "ptxyfsyy"}
    assert config.institution_by_ae("XTWZWSY_DX") is not None
    assert config.institution("xtwzwsy") is not None
    grassroots = facts(institution="xtwzwsy", ae_title="XTWZWSY_DX")
    assert evaluate(config, grassroots) == [Target(CONTRACTED, "grassroots-teleradiology", False)]


def test_every_problem_is_listed_with_its_place() -> None:
    text = (
        BASE.replace("COUNTY_CT", "CLINIC_US")
        + """
  - {code: clinic, ae_titles: [X]}
rules:
  - name: a
    when: {institutions: [nowhere], ae_titles: [GHOST], modalities: [ct]}
    send_to: [north, west]
"""
    )
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing(text, "routing.yaml")
    problems = caught.value.problems
    assert problems == [
        "rules[0].when.modalities: 'ct' is not a DICOM code string (upper case, digits, max 16)"
    ]

    text = (
        BASE.replace("COUNTY_CT", "CLINIC_US")
        + """
  - {code: clinic, ae_titles: [X]}
rules:
  - name: a
    when: {institutions: [nowhere], ae_titles: [GHOST]}
    send_to: [north, west]
"""
    )
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing(text, "routing.yaml")
    assert caught.value.problems == [
        "(top level): institutions: duplicate code 'clinic'",
        "(top level): AE title 'CLINIC_US' belongs to both clinic and county",
        "(top level): rules[0] (a).send_to: unknown site 'west' (known: contracted, north, south)",
        "(top level): rules[0] (a).when.institutions: unknown institution 'nowhere'",
        "(top level): rules[0] (a).when.ae_titles: 'GHOST' is no institution's AE title",
    ]
    assert str(caught.value).startswith("invalid DICOM routing configuration routing.yaml:\n  ")


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        (
            "sites: [{name: x, transport: c-store, host: h}]",
            "sites[0]: transport c-store needs ae_title, host and port",
        ),
        (
            "sites: [{name: x, transport: orthanc-rest}]",
            "sites[0]: transport orthanc-rest needs url: http(s)://host:port",
        ),
        (
            "sites: [{name: x, transport: ftp}]",
            "sites[0].transport: Input should be 'orthanc-rest' or 'c-store'",
        ),
        ("institutions: [{code: a, ae_titles: [WAY_TOO_LONG_AE_TITLE]}]", "institutions[0].ae_titles"),
        ("institutions: [{code: A, ae_titles: [X]}]", "institutions[0].code: String should match pattern"),
        ("rules: [{name: r, send_to: []}]", "rules[0].send_to: List should have at least 1 item"),
        (
            "rules: [{name: r, send_to: [x], when: {priorities: [soon]}}]",
            "rules[0].when.priorities[0]: Input should be",
        ),
        ("rules: [{name: r, send_to: [x], colour: red}]", "rules[0].colour: Extra inputs are not permitted"),
        ("- just a list", "the top level must be a mapping"),
        ("sites: [", "not valid YAML"),
        (
            "sites: [{name: x, transport: orthanc-rest, url: '${PHIX_NOT_SET_ANYWHERE}'}]",
            "PHIX_NOT_SET_ANYWHERE",
        ),
    ],
)
def test_clear_errors(snippet: str, problem: str) -> None:
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing(snippet)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_missing_file() -> None:
    with pytest.raises(RoutingConfigError, match="cannot read the file"):
        load_routing(Path("/nonexistent/routing.yaml"))


def test_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "sites: [{name: x, transport: c-store, ae_title: X, host: '${H:-10.0.0.1}', port: ${P:-104}}]"
    assert parse_routing(text).sites[0].host == "10.0.0.1"
    monkeypatch.setenv("H", "pacs.example")
    monkeypatch.setenv("P", "11112")
    site = parse_routing(text).sites[0]
    assert (site.host, site.port) == ("pacs.example", 11112)


def test_evaluation_order_final_and_first_rule_decides() -> None:
    config = parse_routing(
        BASE
        + """
rules:
  - {name: chest, when: {body_parts: [CHEST]}, send_to: [north]}
  - {name: anon, when: {modalities: [DX, CT]}, send_to: [north, south], deidentify: true}
  - {name: stop-stat, when: {priorities: [stat]}, send_to: [contracted], final: true}
  - {name: never-after-final, send_to: [south]}
"""
    )
    # north: the first rule naming it decides (not de-identified); south: "anon" came first
    assert evaluate(config, facts()) == [Target("north", "chest", False), Target("south", "anon", True)]
    stat = evaluate(config, facts(priority="stat"))
    assert [t.destination for t in stat] == ["north", "south", CONTRACTED]
    none = evaluate(config, facts(modalities=frozenset({"US"}), body_parts=frozenset({"ABDOMEN"})))
    assert none == [Target("south", "never-after-final", False)]
    multi = evaluate(config, facts(modalities=frozenset({"US", "CT"}), body_parts=frozenset()))
    assert [t.rule for t in multi] == ["anon", "anon"]


def test_ae_lookup_is_exact_after_trimming() -> None:
    config = parse_routing(BASE)
    assert config.institution_by_ae("CLINIC_DX ").code == "clinic"  # type: ignore[union-attr]
    assert config.institution_by_ae("clinic_dx") is None
    assert config.ae_titles == ["CLINIC_DX", "CLINIC_US", "COUNTY_CT"]
