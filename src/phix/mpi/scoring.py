"""Scoring a pair of records: deterministic rules first, then Fellegi-Sunter weights.

Each field is compared to an agreement level (:data:`phix.mpi.config.LEVELS`); the pair's score
is the sum of the levels' weights ``log2(m/u)`` in bits, the name weight adjusted by how common
the name is. Rules can make a pair certain (same valid resident ID, same card, same institution
record number, each only when birth date, sex and name do not contradict) or forbid certainty
(two different valid resident IDs, unless they are at most two characters apart and the name and
the birth date agree exactly).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from phix.mpi.config import MatchModel
from phix.mpi.features import Features
from phix.mpi.normalize import Name, id_distance

Grade = Literal["certain", "probable", "possible", "none"]
GRADES: tuple[Grade, ...] = ("certain", "probable", "possible", "none")
Frequency = Callable[[str], float]


@dataclass(slots=True)
class Score:
    total: float
    grade: Grade
    levels: dict[str, str]
    weights: dict[str, float]
    rule: str | None = None
    notes: list[str] = field(default_factory=list)
    offset: float = 0.0  # how far the thresholds moved with the size of the index

    @property
    def agreed(self) -> list[str]:
        return [f for f, w in self.weights.items() if w > 0]

    @property
    def disagreed(self) -> list[str]:
        return [f for f, w in self.weights.items() if w < 0]

    def probability(self, model: MatchModel) -> float:
        """Match probability with prior odds 2**-probable (0.5 at the probable threshold)."""
        if self.grade == "certain" and self.rule:
            return 1.0
        x = self.total - model.thresholds.probable - self.offset
        return 1.0 / (1.0 + math.pow(2.0, -max(min(x, 60.0), -60.0)))


# -- field comparisons ------------------------------------------------------------------------------


def compare_id(a: Features, b: Features) -> str:
    if a.id18 and b.id18:
        if a.id18 == b.id18:
            return "exact"
        return "near" if a.id18[:14] == b.id18[:14] else "disagree"
    valid, raw = (a.id18, b.id_raw) if a.id18 else (b.id18, a.id_raw)
    if valid and raw:
        if len(raw) == 15:
            valid = valid[:6] + valid[8:17]
        return "typo" if id_distance(valid, raw) <= 1 else "missing"
    if a.id_raw and b.id_raw and id_distance(a.id_raw, b.id_raw) <= 1:
        return "typo"
    return "missing"


def _one_char_apart(x: str, y: str) -> bool:
    if len(x) == len(y):
        return sum(c != d for c, d in zip(x, y, strict=True)) == 1
    if abs(len(x) - len(y)) != 1:
        return False
    short, long_ = (x, y) if len(x) < len(y) else (y, x)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def compare_name(a: Name | None, b: Name | None) -> str:
    if a is None or b is None or a.temp or b.temp or not a.readings or not b.readings:
        return "missing"
    if a.han and b.han:
        if a.han == b.han:
            return "exact"
        if set(a.readings) & set(b.readings):
            return "phonetic"
        if a.family == b.family and len(a.given) == len(b.given) == 2 and a.given == b.given[::-1]:
            return "fuzzy"
        if _one_char_apart(a.han, b.han):
            return "fuzzy"
    elif a.han is None and b.han is None:
        if set(a.readings) & set(b.readings):
            return "exact"
        return _latin_parts(a, b)
    elif set(a.readings) & set(b.readings):
        return "phonetic"
    best = max(JaroWinkler.similarity(x, y) for x in a.readings[:2] for y in b.readings[:2])
    return "fuzzy" if best >= 0.92 else "disagree"


def _latin_parts(a: Name, b: Name) -> str:
    """Names in Latin script compared part by part (either order): one part equal and the other
    close -> phonetic; one part equal or the whole close -> fuzzy. A name with one part only
    (the other not recorded) agreeing with a part of the other name -> fuzzy."""
    best = "disagree"
    for x, y in ((a, b), (b, a)):
        single = x.given if not x.family else x.family if not x.given else ""
        parts = (y.family, y.given)
        if single and all(parts) and max(JaroWinkler.similarity(single, p) for p in parts) >= 0.92:
            return "fuzzy"
    for fam, giv in ((b.family, b.given), (b.given, b.family)):
        if not (a.family and a.given and fam and giv):
            continue
        same_family, same_given = a.family == fam, a.given == giv
        if same_family or same_given:
            other = (
                JaroWinkler.similarity(a.given, giv) if same_family else JaroWinkler.similarity(a.family, fam)
            )
            if other >= 0.85:
                return "phonetic"
            best = "fuzzy"
    if best == "disagree" and JaroWinkler.similarity(a.readings[0], b.readings[0]) >= 0.92:
        best = "fuzzy"
    return best


def _dates(f: Features) -> set[str]:
    return {d for d in (f.birth, f.id_birth) if d}


def _close_dates(x: str, y: str, loose: bool = False) -> bool:
    """Swapped month/day, a day off by one, a decade digit, a digit of month or day; ``loose``
    (the names agree) also any one digit, e.g. of the year, or two adjacent digits swapped
    (1918 / 1981; siblings differ there otherwise)."""
    (ya, ma, da), (yb, mb, db) = (x.split("-"), y.split("-"))
    if loose:
        diffs = [i for i, (c, d) in enumerate(zip(x, y, strict=True)) if c != d]
        if len(diffs) == 1:
            return True
        if (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and x[diffs[0]] == y[diffs[1]]
            and x[diffs[1]] == y[diffs[0]]
        ):
            return True  # adjacent digits transposed
    if ya == yb and ma == db and da == mb:
        return True  # month and day swapped
    if ya == yb and ma == mb and abs(int(da) - int(db)) == 1:
        return True
    if ma == mb and da == db and abs(int(ya) - int(yb)) == 10:
        return True  # a decade digit mistyped
    return ya == yb and sum(c != d for c, d in zip(x[5:], y[5:], strict=True)) == 1


def compare_birth(a: Features, b: Features, loose: bool = False) -> str:
    da, db = _dates(a), _dates(b)
    if not da or not db:
        return "missing"
    if da & db:
        return "exact"
    return "close" if any(_close_dates(x, y, loose) for x in da for y in db) else "disagree"


def compare_sex(a: Features, b: Features) -> str:
    sa = {s for s in (a.sex, a.id_sex) if s}
    sb = {s for s in (b.sex, b.id_sex) if s}
    if not sa or not sb:
        return "missing"
    return "agree" if sa & sb else "disagree"


def compare_phone(a: Features, b: Features) -> str:
    if not a.phones or not b.phones:
        return "missing"
    if set(a.phones) & set(b.phones):
        return "agree"
    close = any(
        len(x) == len(y) and sum(c != d for c, d in zip(x, y, strict=True)) == 1
        for x in a.phones
        for y in b.phones
    )
    return "close" if close else "disagree"


def compare_card(a: Features, b: Features) -> str:
    if (set(a.cards) & set(b.cards)) or (set(a.vcards) & set(b.vcards)):
        return "agree"
    if (a.cards and b.cards) or (a.vcards and b.vcards):
        return "disagree"
    return "missing"


def compare_other_id(a: Features, b: Features) -> str:
    """Identifiers of systems the index has no special rules for (insurance, passports ...)."""
    if not a.others or not b.others:
        return "missing"
    if set(a.others) & set(b.others):
        return "exact"
    shared = False
    for sa, va in a.others:
        for sb, vb in b.others:
            if sa == sb:
                shared = True
                if id_distance(va, vb) <= 2 or (abs(len(va) - len(vb)) == 1 and _one_char_apart(va, vb)):
                    return "typo"
    return "disagree" if shared else "missing"


def compare_address(a: Features, b: Features) -> str:
    if a.address is None or b.address is None:
        return "missing"
    _, town_a, loc_a, rest_a = a.address
    _, town_b, loc_b, rest_b = b.address
    if town_a and town_a == town_b:
        if loc_a and loc_a == loc_b:
            return "exact" if rest_a and rest_a == rest_b else "locality"
        return "town"
    if not town_a and not town_b and rest_a and rest_b:
        # No Chinese administrative structure: compare the whole address text.
        if rest_a == rest_b:
            return "exact"
        similarity = fuzz.token_set_ratio(rest_a, rest_b)  # words in any order, a part missing
        return "locality" if similarity >= 90 else "town" if similarity >= 75 else "disagree"
    return "disagree"


def _recorded_contradict(a: Features, b: Features) -> bool:
    """Recorded birth dates *and* sexes (not the ones read from the IDs) that plainly disagree."""
    if not (a.sex and b.sex and a.sex != b.sex):
        return False
    return bool(a.birth and b.birth and a.birth != b.birth and not _close_dates(a.birth, b.birth))


def same_local_id(a: Features, b: Features) -> bool:
    mine = {(i.system, i.value) for i in a.local_ids()}
    return any((i.system, i.value) in mine for i in b.local_ids())


def compare(a: Features, b: Features) -> dict[str, str]:
    """The comparison vector of a pair: field -> agreement level."""
    name = compare_name(a.name, b.name)
    return {
        "id": compare_id(a, b),
        "name": name,
        "birth": compare_birth(a, b, loose=name in ("exact", "phonetic")),
        "sex": compare_sex(a, b),
        "phone": compare_phone(a, b),
        "card": compare_card(a, b),
        "other_id": compare_other_id(a, b),
        "address": compare_address(a, b),
    }


# -- the score ------------------------------------------------------------------------------------


class Scorer:
    """Scores pairs with one model; ``frequency(name_key)`` gives the share of residents with a name."""

    def __init__(
        self,
        model: MatchModel,
        frequency: Frequency | None = None,
        size: int = 0,
        others: Frequency | None = None,
    ) -> None:
        self.model = model
        self.table = model.weights()
        self.frequency = frequency
        # The share of residents with a name *besides one of them*: when both records carry the
        # same reading, the candidate's own resident is among those counted and is left out.
        self.others = others
        # The prior odds that two records match fall as the index grows: so do the thresholds rise.
        self.offset = model.thresholds.offset(size)
        name = model.fields["name"]["exact"]
        self._name_u = name.u

    def _name_adjust(self, key: str, same_key: bool = False) -> float:
        frequency = self.others if same_key and self.others is not None else self.frequency
        if frequency is None or not key:
            return 0.0
        share = max(float(frequency(key)), 1e-9)
        cap = self.model.name_frequency.max_adjust
        return max(-cap, min(cap, math.log2(self._name_u / share)))

    def score(self, a: Features, b: Features) -> Score:
        levels = compare(a, b)
        weights = {f: self.table[f][lvl] for f, lvl in levels.items()}
        if levels["name"] in ("exact", "phonetic") and a.name is not None:
            same = b.name is not None and a.name.key == b.name.key
            adjust = self._name_adjust(a.name.key, same)
            if not same and b.name is not None:
                # Two readings: the commoner one counts (the same whichever record comes first),
                # the candidate's own resident left out of its reading's count.
                adjust = min(adjust, self._name_adjust(b.name.key, True))
            weights["name"] += adjust
        if weights["phone"] > 0 and weights["address"] > 0:
            # Phone and address are shared by a household: together they say little more than one.
            low = "phone" if weights["phone"] <= weights["address"] else "address"
            weights[low] = min(weights[low], self.model.household_bonus)
        total = sum(weights.values())
        t, o = self.model.thresholds, self.offset
        grade: Grade = (
            "certain" if total >= t.certain + o else "probable" if total >= t.probable + o
            else "possible" if total >= t.possible + o else "none"
        )  # fmt: skip
        result = Score(total, grade, levels, weights, offset=o)
        contradiction = levels["name"] == "disagree" or _recorded_contradict(a, b)
        if same_local_id(a, b):
            result.rule, result.grade = "same-institution-identifier", "certain"
        elif levels["id"] == "exact" and not contradiction:
            result.rule, result.grade = "same-resident-id", "certain"
        elif levels["card"] == "agree" and not contradiction and levels["id"] in ("exact", "missing", "typo"):
            result.rule, result.grade = "same-card", "certain"
        elif levels["id"] in ("near", "disagree") and grade == "certain":
            # Both IDs pass the check character: only a typo of two characters that happens to
            # keep it valid could make one person's two IDs; further apart, two people.
            typo = bool(a.id18 and b.id18 and id_distance(a.id18, b.id18) <= 2)
            if not (typo and levels["name"] in ("exact", "phonetic") and levels["birth"] == "exact"):
                result.grade = "probable"
                result.notes.append("different valid resident IDs: not linked automatically")
        elif levels["card"] == "disagree" and grade == "certain" and levels["id"] != "exact":
            result.grade = "probable"
            result.notes.append("different cards: not linked automatically")
        if levels["id"] == "exact" and contradiction:
            result.notes.append("same resident ID but birth date, sex or name contradict")
            if result.grade == "certain" and total < t.certain + o + self.model.contradiction_margin:
                result.grade = "probable"
        return result
