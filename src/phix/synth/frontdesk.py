"""The front-desk error model: how a clerk's record of a resident differs from the truth.

Every kind of error has a probability (:class:`ErrorModel`); :func:`apply` returns the recorded
values and the list of error kinds it applied, which the ground truth keeps per record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from phix.identity import gb11643
from phix.synth import names
from phix.synth.names import Sex
from phix.synth.population import Resident

ERROR_KINDS = (
    "name_typo",
    "name_homophone",
    "name_lookalike",
    "name_traditional",
    "name_pinyin",
    "id_missing",
    "id_typo_invalid",
    "id_typo_valid",
    "id_format",
    "id_legacy15",
    "dob_swapped",
    "dob_typo",
    "sex_wrong",
    "phone_old",
    "phone_missing",
    "phone_typo",
    "newborn_unnamed",
    "same_name_dob",
)


@dataclass(frozen=True, slots=True)
class ErrorModel:
    """Probability of each error per institution record (``id_legacy15``: share of records of a
    holder of a legacy 15-digit ID that carry it; ``newborn_unnamed``: share of birth records)."""

    name_typo: float = 0.01
    name_homophone: float = 0.03
    name_lookalike: float = 0.015
    name_traditional: float = 0.02
    name_pinyin: float = 0.02
    id_missing: float = 0.06
    id_missing_child: float = 0.35  # children under 16 rarely carry their ID card
    id_typo_invalid: float = 0.02
    id_typo_valid: float = 0.005
    id_format: float = 0.03
    id_legacy15: float = 0.5
    dob_swapped: float = 0.01
    dob_typo: float = 0.005
    sex_wrong: float = 0.005
    phone_old: float = 0.3
    phone_missing: float = 0.05
    phone_typo: float = 0.01
    newborn_unnamed: float = 0.7

    def scaled(self, factor: float) -> ErrorModel:
        """Every probability multiplied by ``factor`` (capped at 1); 0 gives clean records."""
        values = {f.name: min(1.0, getattr(self, f.name) * factor) for f in dataclasses.fields(self)}
        return ErrorModel(**values)

    def with_rates(self, rates: dict[str, float]) -> ErrorModel:
        unknown = set(rates) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown error kinds: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **rates)


@dataclass(slots=True)
class Recorded:
    """The demographics as the clerk typed them."""

    family: str
    given: str
    text: str
    name_use: str  # official, or temp for an unnamed newborn
    sex: Sex
    birth: dt.date
    id_value: str | None
    phone: str | None
    errors: list[str] = field(default_factory=list)


def _replace_char(
    text: str, rng: random.Random, table: Callable[[str, random.Random], str | None]
) -> str | None:
    positions = list(range(len(text)))
    rng.shuffle(positions)
    for pos in positions:
        other = table(text[pos], rng)
        if other:
            return text[:pos] + other + text[pos + 1 :]
    return None


def _typo_given(given: str, rng: random.Random, sex: Sex, year: int) -> str:
    if len(given) == 2 and given[0] != given[1] and rng.random() < 0.4:
        return given[::-1]  # 丽华 -> 华丽
    if len(given) == 2 and rng.random() < 0.5:
        return given[rng.randrange(2)]  # a character dropped
    other = names.draw_given(rng, sex, year)
    return given[:-1] + other[-1] if other[-1] != given[-1] else given + other[-1]


def _name(r: Resident, rec: Recorded, m: ErrorModel, rng: random.Random) -> None:
    family, given = r.family, r.given
    if rng.random() < m.name_typo:
        given = _typo_given(given, rng, r.sex, r.birth.year)
        rec.errors.append("name_typo")
    for kind, rate, table in (
        ("name_homophone", m.name_homophone, names.homophone),
        ("name_lookalike", m.name_lookalike, names.lookalike),
    ):
        if rng.random() < rate:
            full = _replace_char(family + given, rng, table)
            if full is not None:
                family, given = full[: len(family)], full[len(family) :]
                rec.errors.append(kind)
    if rng.random() < m.name_pinyin:
        family, given = names.pinyin_name(family, given)
        style = rng.randrange(4)
        text = (
            f"{family} {given}"
            if style == 0
            else f"{family.upper()} {given.upper()}"
            if style == 1
            else f"{given} {family}"
            if style == 2
            else f"{family}{given.lower()}"
        )
        rec.family, rec.given, rec.text = family, given, text
        rec.errors.append("name_pinyin")
        return
    if rng.random() < m.name_traditional:
        trad_family, trad_given = names.to_traditional(family), names.to_traditional(given)
        if (trad_family, trad_given) != (family, given):
            family, given = trad_family, trad_given
            rec.errors.append("name_traditional")
    rec.family, rec.given, rec.text = family, given, family + given


_FULL_WIDTH = {ord(c): chr(ord(c) + 0xFEE0) for c in "0123456789Xx"}


def _id(r: Resident, rec: Recorded, m: ErrorModel, rng: random.Random, on: dt.date) -> None:
    missing = m.id_missing_child if r.age(on) < 16 else m.id_missing
    if rng.random() < missing:
        rec.id_value = None
        rec.errors.append("id_missing")
        return
    value = r.id18
    if r.id15 and rng.random() < m.id_legacy15:
        value = r.id15
        rec.errors.append("id_legacy15")
    if rng.random() < m.id_typo_invalid:
        pos = rng.randrange(len(value) - (1 if len(value) == 18 else 0))
        value = value[:pos] + str((int(value[pos]) + rng.randint(1, 9)) % 10) + value[pos + 1 :]
        rec.errors.append("id_typo_invalid")
    elif len(value) == 18 and rng.random() < m.id_typo_valid:
        # A wrong order code with a recomputed check: passes validation, names nobody (or someone else).
        pos = rng.choice((14, 15))
        first17 = value[:pos] + str((int(value[pos]) + rng.randint(1, 9)) % 10) + value[pos + 1 : 17]
        value = first17 + gb11643.check_char(first17)
        rec.errors.append("id_typo_valid")
    if rng.random() < m.id_format:
        style = rng.randrange(3)
        if style == 0:
            value = value.translate(_FULL_WIDTH)
        elif style == 1 and value.endswith("X"):
            value = value[:-1] + "x"
        else:
            value = f"{value[:6]} {value[6:14]} {value[14:]}"
        rec.errors.append("id_format")
    rec.id_value = value


def _birth(rec: Recorded, m: ErrorModel, rng: random.Random) -> None:
    b = rec.birth
    if rng.random() < m.dob_swapped and b.day <= 12 and b.day != b.month:
        rec.birth = dt.date(b.year, b.day, b.month)
        rec.errors.append("dob_swapped")
    elif rng.random() < m.dob_typo:
        try:
            rec.birth = (
                b.replace(year=b.year + rng.choice((-10, 10)))
                if rng.random() < 0.5
                else b.replace(day=b.day + rng.choice((-1, 1)))
            )
        except ValueError:
            return
        rec.errors.append("dob_typo")


def _phone(r: Resident, rec: Recorded, m: ErrorModel, rng: random.Random) -> None:
    if rng.random() < m.phone_missing:
        rec.phone = None
        rec.errors.append("phone_missing")
    elif r.old_phone and rng.random() < m.phone_old:
        rec.phone = r.old_phone
        rec.errors.append("phone_old")
    elif rng.random() < m.phone_typo:
        phone = r.household_phone
        pos = rng.randrange(3, 11)
        rec.phone = phone[:pos] + str((int(phone[pos]) + rng.randint(1, 9)) % 10) + phone[pos + 1 :]
        rec.errors.append("phone_typo")


def apply(r: Resident, m: ErrorModel, rng: random.Random, on: dt.date, newborn_at_birth: bool) -> Recorded:
    """What a front desk records for resident ``r`` on day ``on``."""
    rec = Recorded(r.family, r.given, r.name, "official", r.sex, r.birth, r.id18, r.household_phone)
    if r.same_name_dob_as:
        rec.errors.append("same_name_dob")
    if newborn_at_birth and r.mother_name and rng.random() < m.newborn_unnamed:
        rec.family, rec.given = r.family, ""
        rec.text = f"{r.mother_name}之{'子' if r.sex == 'male' else '女'}"
        rec.name_use, rec.id_value = "temp", None
        rec.errors.append("newborn_unnamed")
    else:
        _name(r, rec, m, rng)
        _id(r, rec, m, rng, on)
    _birth(rec, m, rng)
    if rng.random() < m.sex_wrong:
        rec.sex = "female" if r.sex == "male" else "male"
        rec.errors.append("sex_wrong")
    _phone(r, rec, m, rng)
    return rec
