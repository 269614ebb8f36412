"""Routing rules (``dicom/routing.yaml``): who may send, where studies go, validated at start.

The file has three sections:

``institutions``
    the sending institutions, each with the AE titles its modalities call from (anything else is
    rejected at association) and the MRN system its PatientIDs belong to.
``sites``
    the reading sites (Orthanc nodes), reached by REST upload (``orthanc-rest``) or C-STORE.
``rules``
    evaluated in order; a rule matches a study when every listed criterion matches (an empty list
    matches anything; a study with several modalities or body parts matches if any does). Every
    matching rule adds its destinations until a rule with ``final: true`` matches; the first rule
    that names a destination decides its de-identification. The destination ``contracted`` means
    "the reading sites the sending institution has a teleradiology contract with": active
    OrganizationAffiliation resources whose participatingOrganization is the sender and whose
    organization is a site's organization.

String values may use ``${VAR}`` or ``${VAR:-default}`` (environment), for container wiring.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phix.dicom.config import valid_ae_title
from phix.identity.systems import mrn_system

CONTRACTED = "contracted"
Priority = Literal["routine", "urgent", "asap", "stat"]
PRIORITY_RANK: dict[str, int] = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}

_CODE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_MODALITY = re.compile(r"^[A-Z0-9]{1,16}$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class RoutingConfigError(ValueError):
    """The routing file is missing, unreadable or invalid; ``problems`` lists each one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"invalid DICOM routing configuration {source}:\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Institution(_Strict):
    code: str = Field(pattern=_CODE)
    name: str | None = None
    ae_titles: list[str] = Field(min_length=1)
    organization: str | None = None  # default Organization/org-<code>
    mrn_system: str | None = None  # default https://fhir.putian.gov.cn/NamingSystem/<code>/mrn

    @field_validator("ae_titles")
    @classmethod
    def _titles(cls, value: list[str]) -> list[str]:
        return [valid_ae_title(v) for v in value]

    @property
    def organization_ref(self) -> str:
        return self.organization or f"Organization/org-{self.code}"

    @property
    def mrn(self) -> str:
        return self.mrn_system or mrn_system(self.code)


class Site(_Strict):
    name: str = Field(pattern=_CODE)
    organization: str | None = None  # the reading organization (matched against contracts)
    transport: Literal["orthanc-rest", "c-store"]
    url: str | None = None  # orthanc-rest: the Orthanc REST root, e.g. http://127.0.0.1:8042
    username: str | None = None
    password: str | None = None
    ae_title: str | None = None  # c-store: the site's called AE title
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)

    @model_validator(mode="after")
    def _transport_fields(self) -> Site:
        if self.transport == "orthanc-rest":
            if not self.url or not re.match(r"^https?://", self.url):
                raise ValueError("transport orthanc-rest needs url: http(s)://host:port")
        else:
            if not (self.ae_title and self.host and self.port):
                raise ValueError("transport c-store needs ae_title, host and port")
            valid_ae_title(self.ae_title)
        return self


class Match(_Strict):
    institutions: list[str] = []
    ae_titles: list[str] = []
    modalities: list[str] = []
    body_parts: list[str] = []
    priorities: list[Priority] = []

    @field_validator("modalities", "body_parts")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for v in value:
            if not _MODALITY.match(v):
                raise ValueError(f"{v!r} is not a DICOM code string (upper case, digits, max 16)")
        return value


class Rule(_Strict):
    name: str = Field(min_length=1)
    when: Match = Match()
    send_to: list[str] = Field(min_length=1)
    deidentify: bool = False
    final: bool = False


class RoutingConfig(_Strict):
    contract_role: str = "teleradiology"  # OrganizationAffiliation.code that makes a reading contract
    institutions: list[Institution] = []
    sites: list[Site] = []
    rules: list[Rule] = []

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        problems: list[str] = []
        _unique(problems, "institutions", [i.code for i in self.institutions], "code")
        _unique(problems, "sites", [s.name for s in self.sites], "name")
        _unique(problems, "rules", [r.name for r in self.rules], "name")
        owner: dict[str, str] = {}
        for inst in self.institutions:
            for title in inst.ae_titles:
                if title in owner and owner[title] != inst.code:
                    problems.append(f"AE title {title!r} belongs to both {owner[title]} and {inst.code}")
                owner[title] = inst.code
        sites = {s.name for s in self.sites}
        if CONTRACTED in sites:
            problems.append(f"a site may not be named {CONTRACTED!r} (reserved)")
        codes = {i.code for i in self.institutions}
        for n, rule in enumerate(self.rules):
            where = f"rules[{n}] ({rule.name})"
            for dest in rule.send_to:
                if dest != CONTRACTED and dest not in sites:
                    known = ", ".join(sorted(sites | {CONTRACTED}))
                    problems.append(f"{where}.send_to: unknown site {dest!r} (known: {known})")
            for code in rule.when.institutions:
                if code not in codes:
                    problems.append(f"{where}.when.institutions: unknown institution {code!r}")
            for title in rule.when.ae_titles:
                if title not in owner:
                    problems.append(f"{where}.when.ae_titles: {title!r} is no institution's AE title")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def institution_by_ae(self, ae_title: str) -> Institution | None:
        title = ae_title.strip()
        for inst in self.institutions:
            if title in inst.ae_titles:
                return inst
        return None

    def institution(self, code: str | None) -> Institution | None:
        return next((i for i in self.institutions if i.code == code), None)

    def site(self, name: str) -> Site | None:
        return next((s for s in self.sites if s.name == name), None)

    def sites_of(self, organization_ref: str) -> list[Site]:
        return [s for s in self.sites if s.organization == organization_ref]

    @property
    def ae_titles(self) -> list[str]:
        return [t for i in self.institutions for t in i.ae_titles]


def _unique(problems: list[str], section: str, values: list[str], key: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            problems.append(f"{section}: duplicate {key} {value!r}")
        seen.add(value)


@dataclass(frozen=True, slots=True)
class StudyFacts:
    """What the rules look at, for one study."""

    institution: str | None
    ae_title: str | None
    modalities: frozenset[str]
    body_parts: frozenset[str]
    priority: str = "routine"


@dataclass(frozen=True, slots=True)
class Target:
    destination: str  # a site name or CONTRACTED
    rule: str
    deidentify: bool


def _matches(when: Match, facts: StudyFacts) -> bool:
    return (
        (not when.institutions or facts.institution in when.institutions)
        and (not when.ae_titles or facts.ae_title in when.ae_titles)
        and (not when.modalities or bool(facts.modalities & set(when.modalities)))
        and (not when.body_parts or bool(facts.body_parts & set(when.body_parts)))
        and (not when.priorities or facts.priority in when.priorities)
    )


def evaluate(config: RoutingConfig, facts: StudyFacts) -> list[Target]:
    """The destinations of a study, in rule order; ``contracted`` is resolved by the caller."""
    chosen: dict[str, Target] = {}
    for rule in config.rules:
        if not _matches(rule.when, facts):
            continue
        for dest in rule.send_to:
            chosen.setdefault(dest, Target(dest, rule.name, rule.deidentify))
        if rule.final:
            break
    return list(chosen.values())


def expand_env(text: str, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise KeyError(name)
            return default
        return value

    return _ENV.sub(substitute, text)


def parse_routing(text: str, source: str = "<string>") -> RoutingConfig:
    try:
        expanded = expand_env(text)
    except KeyError as exc:
        raise RoutingConfigError(source, [f"environment variable {exc.args[0]} is not set"]) from None
    try:
        data = yaml.safe_load(expanded)
    except yaml.YAMLError as exc:
        raise RoutingConfigError(source, [f"not valid YAML: {exc}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RoutingConfigError(source, ["the top level must be a mapping"])
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.extend(f"{loc or '(top level)'}: {m}" for m in message.split("; "))
        raise RoutingConfigError(source, problems) from None


def load_routing(path: Path) -> RoutingConfig:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise RoutingConfigError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None
    return parse_routing(text, str(path))
