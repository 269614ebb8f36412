"""Residents of Putian, generated one household at a time (shared address and phone, parents and
children, grandparents, newborns), with valid resident IDs, phones and cards."""

from __future__ import annotations

import datetime as dt
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from phix.identity import gb11643
from phix.synth import codes, names
from phix.synth.geography import DISTRICT_BY_CODE, DISTRICT_DRAW, Address, localities, make_address
from phix.synth.ids import hex_token, substream
from phix.synth.names import Sex

# Areas of people registered outside Putian (a small share of residents moved in).
_MIGRANT_AREAS = ("350102", "350203", "350582", "350583", "360102", "440305")
_MOBILE_PREFIXES = (
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "130",
    "131",
    "132",
    "155",
    "156",
    "185",
    "186",
    "133",
    "153",
    "180",
    "181",
    "189",
    "177",
    "187",
    "188",
    "198",
    "199",
)


@dataclass(slots=True)
class Resident:
    key: str
    household: str
    role: str  # head, spouse, child, parent
    family: str
    given: str
    sex: Sex
    birth: dt.date
    id18: str
    id15: str | None
    address: Address
    phone: str | None  # own mobile
    household_phone: str  # the number a front desk records for children and elders
    old_phone: str | None
    citizen_card: str | None
    virtual_card: str | None
    chronic: tuple[str, ...]
    allergy: int | None  # index into codes.ALLERGENS
    mother: str | None = None  # resident key
    mother_name: str | None = None
    same_name_dob_as: str | None = None
    children_born: list[dt.date] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.family + self.given

    def age(self, on: dt.date) -> int:
        return on.year - self.birth.year - ((on.month, on.day) < (self.birth.month, self.birth.day))


@dataclass(slots=True)
class Household:
    key: str
    members: list[Resident]


class PopulationState:
    """What must be remembered across households: used IDs (uniqueness) and recent residents
    (to plant different people with the same name and birth date)."""

    def __init__(self) -> None:
        self.used_ids: set[str] = set()
        self.recent: deque[Resident] = deque(maxlen=500)


def _chronic(rng: random.Random, age: int) -> tuple[str, ...]:
    band = 0 if age < 30 else 1 if age < 45 else 2 if age < 60 else 3
    rates = {
        "I10": (0.01, 0.10, 0.25, 0.45),
        "E11.9": (0.005, 0.04, 0.10, 0.16),
        "E78.5": (0.02, 0.06, 0.12, 0.18),
        "J44.9": (0.0, 0.005, 0.02, 0.08),
        "N18.9": (0.0, 0.01, 0.02, 0.05),
        "J45.9": (0.04, 0.03, 0.03, 0.03),
        "M17.9": (0.0, 0.01, 0.06, 0.15),
        "K29.5": (0.01, 0.05, 0.06, 0.06),
    }
    return tuple(code for code in codes.CHRONIC if rng.random() < rates[code][band])


def _mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _area(rng: random.Random, district: str, birth: dt.date) -> str:
    if rng.random() < 0.03:
        return rng.choice(_MIGRANT_AREAS)
    if district in ("350304", "350305") and birth.year < 2002 and rng.random() < 0.92:
        return "350321"  # registered in Putian County before it was split in 2002
    return district


class PopulationGenerator:
    def __init__(self, seed: int, reference: dt.date) -> None:
        self.seed = seed
        self.reference = reference
        self.state = PopulationState()
        self._next = 0

    def _birth(self, rng: random.Random, age_low: float, age_high: float) -> dt.date:
        days = int(rng.uniform(age_low, age_high) * 365.25)
        return self.reference - dt.timedelta(days=max(days, 0))

    def _partner_birth(self, rng: random.Random, partner: dt.date, low: int, high: int) -> dt.date:
        """A spouse's birth date: a few years around the partner's, aged at least 20."""
        birth = partner + dt.timedelta(days=rng.randint(low * 365, high * 365))
        latest = self.reference - dt.timedelta(days=int(20 * 365.25) + rng.randint(0, 400))
        return min(birth, latest)

    def _ids(self, rng: random.Random, area: str, birth: dt.date, sex: Sex) -> tuple[str, str | None]:
        legacy = birth.year < 1955 and rng.random() < 0.45
        for _ in range(1000):
            order = rng.randrange(500) * 2 + (1 if sex == "male" else 0)
            id18 = gb11643.make(area, birth, order)
            if id18 not in self.state.used_ids:
                self.state.used_ids.add(id18)
                id15 = f"{area}{birth:%y%m%d}{order:03d}" if legacy else None
                return id18, id15
        raise RuntimeError("resident ID space exhausted")  # pragma: no cover

    def _person(
        self,
        rng: random.Random,
        hh: str,
        role: str,
        address: Address,
        sex: Sex,
        birth: dt.date,
        family: str,
        taken: set[str],
    ) -> Resident:
        index = self._next
        self._next += 1
        given = names.draw_given(rng, sex, birth.year)
        for _ in range(20):  # siblings and relatives never share a full name
            if family + given not in taken:
                break
            given = names.draw_given(rng, sex, birth.year)
        twin_of: str | None = None
        if role in ("head", "spouse") and self.state.recent and rng.random() < 0.004:
            other = rng.choice(self.state.recent)
            if other.sex == sex and other.household != hh:
                family, given, birth, twin_of = other.family, other.given, other.birth, other.key
        id18, id15 = self._ids(rng, _area(rng, address.district_code, birth), birth, sex)
        age = self.reference.year - birth.year
        phone = (
            _mobile(rng)
            if (age >= 18 and rng.random() < (0.95 if age < 70 else 0.65))
            or (12 <= age < 18 and rng.random() < 0.4)
            else None
        )
        old_phone = _mobile(rng) if phone and age >= 25 and rng.random() < 0.25 else None
        # Unique per resident: a prime multiplier permutes the 12-digit serial space.
        serial = (index * 982451653 + self.seed * 7919 + 10**11) % 10**12
        card = f"3503{serial:012d}" if rng.random() < 0.6 else None
        virtual = (
            hex_token(32, self.seed, "virtual-card", index) if 18 <= age < 65 and rng.random() < 0.3 else None
        )
        allergy = rng.randrange(len(codes.ALLERGENS)) if rng.random() < 0.07 else None
        resident = Resident(
            key=f"R{index:07d}",
            household=hh,
            role=role,
            family=family,
            given=given,
            sex=sex,
            birth=birth,
            id18=id18,
            id15=id15,
            address=address,
            phone=phone,
            household_phone="",
            old_phone=old_phone,
            citizen_card=card,
            virtual_card=virtual,
            chronic=_chronic(rng, age),
            allergy=allergy,
            same_name_dob_as=twin_of,
        )
        self.state.recent.append(resident)
        return resident

    def _address(self, rng: random.Random) -> Address:
        district = DISTRICT_BY_CODE[DISTRICT_DRAW.draw(rng)]
        town = rng.choice(district.towns)
        locality = rng.choice(localities(town))
        return make_address(district.code, town, locality, rng.randint(1, 299), rng.randint(1, 20))

    def household(self, number: int) -> Household:
        rng = substream(self.seed, "household", number)
        hh = f"H{number:07d}"
        address = self._address(rng)
        kind = rng.choices(
            ("single_elder", "elder_couple", "couple", "nuclear", "three_gen", "single_adult"),
            (8, 14, 10, 40, 22, 6),
        )[0]
        members: list[Resident] = []

        def add(role: str, sex: Sex, birth: dt.date, family: str | None = None) -> Resident:
            taken = {m.name for m in members}
            person = self._person(
                rng, hh, role, address, sex, birth, family or names.draw_surname(rng), taken
            )
            members.append(person)
            return person

        if kind == "single_elder":
            add("head", rng.choice(("male", "female")), self._birth(rng, 60, 98))
        elif kind == "single_adult":
            add("head", rng.choice(("male", "female")), self._birth(rng, 18, 60))
        elif kind in ("elder_couple", "couple"):
            low, high = (55, 92) if kind == "elder_couple" else (22, 55)
            husband = add("head", "male", self._birth(rng, low, high))
            add("spouse", "female", self._partner_birth(rng, husband.birth, -3, 6))
        else:
            three_gen = kind == "three_gen"
            if three_gen:
                grandpa = add("parent", "male", self._birth(rng, 52, 90))
                if rng.random() < 0.75:
                    add("parent", "female", self._partner_birth(rng, grandpa.birth, -2, 5))
                father_age = min(grandpa.age(self.reference) - rng.randint(22, 34), 55)
                father = add(
                    "head",
                    "male",
                    self._birth(rng, max(father_age, 22), max(father_age, 22) + 1),
                    grandpa.family,
                )
            else:
                father = add("head", "male", self._birth(rng, 22, 52))
            mother = add("spouse", "female", self._partner_birth(rng, father.birth, -2, 5))
            self._children(rng, add, father, mother)
        phone = next((m.phone for m in members if m.phone), None) or _mobile(rng)
        for member in members:
            member.household_phone = member.phone or phone
        return Household(hh, members)

    def _children(self, rng: random.Random, add: object, father: Resident, mother: Resident) -> None:
        mother_age = mother.age(self.reference)
        room = mother_age - 20
        if room < 0:
            return
        count = rng.choices((1, 2, 3), (45, 42, 13))[0]
        newest = (
            rng.uniform(0, 1) if mother_age <= 40 and rng.random() < 0.18 else rng.uniform(0, min(room, 20))
        )
        ages = [newest]  # the youngest child, sometimes a newborn; older siblings 1.5-6 years apart
        for _ in range(count - 1):
            older = ages[-1] + rng.uniform(1.5, 6)
            if older > min(room, 26):
                break
            ages.append(older)
        ages.reverse()
        for age in ages:
            sex: Sex = "male" if rng.random() < 0.53 else "female"
            family = father.family if rng.random() < 0.95 else mother.family
            child: Resident = add("child", sex, self._birth(rng, age, age), family)  # type: ignore[operator]
            child.mother, child.mother_name = mother.key, mother.name
            mother.children_born.append(child.birth)

    def residents(self, count: int) -> Iterator[Household]:
        """Households until ``count`` residents exist (the last one is cut to fit)."""
        number = 0
        while self._next < count:
            start = self._next
            hh = self.household(number)
            number += 1
            if self._next > count:
                keep = count - start
                for dropped in hh.members[keep:]:
                    self.state.used_ids.discard(dropped.id18)
                hh.members = hh.members[:keep]
                self._next = count
            yield hh
