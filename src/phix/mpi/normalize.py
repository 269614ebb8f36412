"""Normalisation of Chinese identity data: resident IDs, names, phones and addresses.

Everything here is pure and deterministic (no database); dictionaries (OpenCC, pypinyin) load
lazily on first use, never at import time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

from phix.identity import gb11643

# -- resident ID ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A resident ID as typed, its canonical form and what is wrong with it (``flags``)."""

    raw: str
    norm: str  # NFKC, no blanks or hyphens, upper-case X
    id18: str | None  # the valid 18-character form (a 15-digit ID upgraded), else None
    flags: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return self.id18 is not None


def resident_id(raw: str) -> ResidentId:
    """Validate and canonicalise a typed resident ID; malformed input is kept and flagged."""
    norm = raw if _CLEAN18.match(raw) else gb11643.normalize(raw)
    flags: list[str] = []
    if _CLEAN18.match(norm) and gb11643.check_char(norm[:17]) == norm[17] and _calendar(norm):
        return ResidentId(raw, norm, norm, ())
    id18 = gb11643.to18(norm)
    if id18 is None:
        if len(norm) == 18 and re.fullmatch(r"[0-9]{17}[0-9X]", norm):
            flags.append("id-checksum" if gb11643.birth_date(norm) else "id-date")
        elif len(norm) == 15 and norm.isdigit():
            flags.append("id-date")
        else:
            flags.append("id-format")
    elif len(norm) == 15:
        flags.append("id-legacy15")
    return ResidentId(raw, norm, id18, tuple(flags))


_CLEAN18 = re.compile(r"^[0-9]{17}[0-9X]$")


def _calendar(id18: str) -> bool:
    try:
        return int(id18[6:10]) >= 1800 and bool(dt.date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14])))
    except ValueError:
        return False


def id_distance(a: str, b: str) -> int:
    """Substitutions between two equal-length IDs (an adjacent swap counts once); 99 otherwise."""
    if len(a) != len(b):
        return 99
    diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if (
        len(diffs) == 2
        and diffs[1] == diffs[0] + 1
        and a[diffs[0]] == b[diffs[1]]
        and a[diffs[1]] == b[diffs[0]]
    ):
        return 1
    return len(diffs)


def fold_identifier(raw: str) -> str:
    """Card numbers and MRNs as compared: NFKC (full-width folded), no blanks or hyphens, upper-case."""
    return re.sub(r"[\s\-]+", "", unicodedata.normalize("NFKC", raw)).upper()


# -- names ----------------------------------------------------------------------------------------

_COMPOUND = (
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 "
    "端木 澹台 南宫 西门 申屠 闻人 万俟 独孤 钟离 单于 呼延 公羊 赫连 拓跋"
)
COMPOUND_SURNAMES = frozenset(_COMPOUND.split(" "))
# Readings of characters *as surnames*, where pypinyin's default (most frequent) reading is wrong.
SURNAME_READINGS: dict[str, str] = {
    "曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "区": "ou", "朴": "piao", "查": "zha",
    "盖": "ge", "乐": "yue", "覃": "qin", "翟": "zhai", "缪": "miao", "繁": "po", "种": "chong",
    "秘": "bi", "员": "yun", "折": "she", "句": "gou", "重": "chong", "长": "chang", "尉": "yu",
    "万": "wan", "沈": "shen", "任": "ren", "华": "hua", "纪": "ji", "燕": "yan", "宿": "su",
    "訾": "zi", "相": "xiang", "舍": "she", "隗": "wei", "召": "shao", "洗": "xian", "冼": "xian",
    "长孙": "zhangsun", "万俟": "moqi", "尉迟": "yuchi", "单于": "chanyu",
}  # fmt: skip
_TEMP_NAME = re.compile(r"^(.{2,4})之(子|女|儿|男|婴)(?:[一二三四1-4])?$|^(无名|新生儿|婴儿|男婴|女婴)")
_LATIN_SPLIT = re.compile(r"[\s,.·•\-_/]+")
MAX_READINGS = 8


def is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\U00020000" <= ch <= "\U0003134f"


@cache
def _t2s() -> object:
    import opencc  # lazily: OpenCC loads its dictionaries (shipped offline) on construction

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=65536)
def to_simplified(text: str) -> str:
    """Traditional characters folded to simplified (OpenCC t2s); other text unchanged."""
    converted: str = _t2s().convert(text)  # type: ignore[attr-defined]
    return converted


def fold_latin(text: str) -> str:
    """Lower-case ASCII letters and digits only: tones, accents, blanks and ``ü`` -> ``u`` folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed.lower() if c.isascii() and c.isalnum()).replace("v", "u")


@lru_cache(maxsize=65536)
def char_readings(ch: str) -> tuple[str, ...]:
    """All pinyin readings of one character (pypinyin heteronyms), toneless; most frequent first."""
    from pypinyin import Style, pinyin

    found = pinyin(ch, style=Style.NORMAL, heteronym=True, errors="ignore")
    return tuple(dict.fromkeys(fold_latin(r) for r in (found[0] if found else []) if fold_latin(r)))


def split_surname(full: str) -> tuple[str, str]:
    """Split a Han full name into (surname, given), knowing the compound surnames."""
    if len(full) >= 3 and full[:2] in COMPOUND_SURNAMES:
        return full[:2], full[2:]
    return full[:1], full[1:]


def surname_readings(surname: str) -> tuple[str, ...]:
    """Readings of a surname: the surname table first (曾 -> zeng), then every other reading."""
    if surname in SURNAME_READINGS:
        return (SURNAME_READINGS[surname],)
    pieces = [
        ((SURNAME_READINGS[c],) if c in SURNAME_READINGS else char_readings(c) or (c,)) for c in surname
    ]
    return tuple("".join(p) for p in itertools.islice(itertools.product(*pieces), MAX_READINGS))


def given_readings(given: str) -> tuple[str, ...]:
    pieces = [char_readings(c) or (c,) if is_han(c) else (fold_latin(c),) for c in given]
    pieces = [p for p in pieces if p and p[0]]
    return tuple("".join(p) for p in itertools.islice(itertools.product(*pieces), MAX_READINGS))


@dataclass(frozen=True, slots=True)
class Name:
    """A person's name, normalised. ``han`` is the simplified full name when written in Han
    characters; ``readings`` are pinyin spellings of the full name (surname first), the first
    one canonical; ``temp`` marks placeholder names of unnamed newborns (never compared)."""

    family: str
    given: str
    han: str | None
    readings: tuple[str, ...]
    temp: bool = False

    @property
    def key(self) -> str:
        """Canonical spelling (blocking and name-frequency key)."""
        return self.readings[0] if self.readings else ""


def _clean_han(text: str) -> str:
    return "".join(c for c in to_simplified(unicodedata.normalize("NFKC", text)) if is_han(c))


def han_name(family: str, given: str) -> Name:
    family, given = _clean_han(family), _clean_han(given)
    if not family and given:
        family, given = split_surname(given)
    readings = tuple(
        s + g
        for s, g in itertools.islice(
            itertools.product(surname_readings(family), given_readings(given) or ("",)), MAX_READINGS
        )
    )
    return Name(family, given, family + given, readings)


def latin_name(family: str, given: str, text: str = "") -> Name:
    """A name written in pinyin. Both orders are kept as readings (``Xiaoming Chen`` is common)."""
    fam, giv = fold_latin(family), fold_latin(given)
    if not fam and not giv:
        parts = [fold_latin(p) for p in _LATIN_SPLIT.split(text) if fold_latin(p)]
        if len(parts) >= 2:
            fam, giv = parts[0], "".join(parts[1:])
        elif parts:
            fam = parts[0]
    readings = tuple(dict.fromkeys(r for r in (fam + giv, giv + fam) if r))
    return Name(fam, giv, None, readings)


def parse_name(family: str, given: str, text: str, use: str | None = None) -> Name | None:
    """Normalise one HumanName's parts. Returns None when nothing usable is there."""
    whole = (family + given) or text
    stripped = unicodedata.normalize("NFKC", whole).strip()
    if not stripped:
        return None
    if use == "temp" or _TEMP_NAME.match(_clean_han(text or whole) or stripped):
        return Name("", "", None, (), temp=True)
    if any(is_han(c) for c in stripped):
        if family or given:
            return han_name(family, given)
        return han_name("", text)
    return latin_name(family, given, text)


# -- phones ---------------------------------------------------------------------------------------

PUTIAN_AREA = "594"
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


def phone(raw: str) -> str | None:
    """E.164-style form: ``+86`` mobiles (11 digits from 13-19), Putian landlines (0594) and other
    Chinese landlines. None when the text is not a plausible Chinese phone number."""
    digits = "".join(c for c in unicodedata.normalize("NFKC", raw) if c.isdigit())
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) in (11, 12, 13):
        rest = digits[2:]
        if _MOBILE.match(rest):
            digits = rest
        elif not rest.startswith(("0", "1")):
            digits = "0" + rest  # +86 then an area code without its trunk 0
    if _MOBILE.match(digits):
        return "+86" + digits
    if len(digits) in (7, 8) and not digits.startswith("0"):
        return "+86" + PUTIAN_AREA + digits
    if digits.startswith("0") and 10 <= len(digits) <= 12:
        return "+86" + digits[1:]
    return None


# -- addresses ------------------------------------------------------------------------------------

_ADDRESS = re.compile(
    r"^(?:(?P<province>[^省]{2,7}省|[^区]{2,6}自治区))?"
    r"(?:(?P<city>[^市]{1,6}市))?"
    r"(?:(?P<district>[^区县]{1,6}?(?:区|县)))?"
    r"(?:(?P<town>[^镇乡道]{1,6}?(?:街道|镇|乡)))?"
    r"(?:(?P<locality>[^村区]{1,6}?(?:村|社区|居委会)))?"
    r"(?P<rest>.*)$"
)


@dataclass(frozen=True, slots=True)
class AddressTokens:
    district: str
    town: str
    locality: str
    rest: str

    def tokens(self) -> tuple[str, str, str, str]:
        return (self.district, self.town, self.locality, self.rest)


_LATIN_WORDS = re.compile(r"[^\W_]+")


def address(text: str) -> AddressTokens | None:
    """Split a Chinese address into district / town / village-or-community / the rest. An address
    without Han characters keeps its words (``rest`` = lower-case words joined by blanks)."""
    if not any(is_han(c) for c in text):
        # No Chinese structure to find: the words, lower-cased, in order (compared word-wise).
        words = _LATIN_WORDS.findall(unicodedata.normalize("NFKC", text).lower())
        return AddressTokens("", "", "", " ".join(words)) if words else None
    clean = to_simplified(unicodedata.normalize("NFKC", text))
    clean = re.sub(r"[\s,，。、()（）#]+", "", clean).replace("號", "号")
    if not clean:
        return None
    m = _ADDRESS.match(clean)
    if m is None:  # pragma: no cover - the pattern matches every string
        return None
    parts = [m.group(g) or "" for g in ("district", "town", "locality", "rest")]
    return AddressTokens(*parts)
