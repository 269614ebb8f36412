"""The ``pinyin`` string normaliser: Chinese names searchable by their Latin spelling.

Index side: every reading of every character (``pypinyin`` heteronyms, plus the surname readings
pypinyin gets wrong by default: 曾 zeng, 单 shan, 解 xie, 仇 qiu, 区 ou, 朴 piao, 查 zha), all
combinations up to :data:`MAX_COMBINATIONS`, written without spaces or tones, ``ü``/``v`` as ``u``.
Query side: the same folding of what the user typed, so ``chen ming``, ``chenming``, ``Chén Míng``
and ``陈明`` all become ``chenming`` and match 陈明 by prefix.
"""

from __future__ import annotations

import itertools
import unicodedata
from functools import lru_cache

from phix.search.string import Normalizer, normalize

MAX_COMBINATIONS = 32

# Surname readings that pypinyin's default (most frequent) reading gets wrong.
SURNAME_READINGS: dict[str, tuple[str, ...]] = {
    "曾": ("zeng",),
    "单": ("shan",),
    "單": ("shan",),
    "解": ("xie",),
    "仇": ("qiu",),
    "区": ("ou",),
    "區": ("ou",),
    "朴": ("piao",),
    "查": ("zha",),
}


def _is_han(ch: str) -> bool:
    return "CJK UNIFIED IDEOGRAPH" in unicodedata.name(ch, "")


def fold_latin(text: str) -> str:
    """Lower-case, drop tones/accents and everything but letters and digits; ``v`` -> ``u``."""
    return "".join(ch for ch in normalize(text) if ch.isalnum()).replace("v", "u")


@lru_cache(maxsize=65536)
def readings(ch: str) -> tuple[str, ...]:
    from pypinyin import Style, pinyin  # imported lazily: loading its dictionaries takes a moment

    found = [fold_latin(r) for r in pinyin(ch, style=Style.NORMAL, heteronym=True, errors="ignore")[0]]
    extra = list(SURNAME_READINGS.get(ch, ()))
    return tuple(dict.fromkeys(extra + [r for r in found if r]))


def index_keys(text: str) -> list[str]:
    """All spellings of ``text`` (Han characters by all their readings, other letters folded)."""
    pieces: list[tuple[str, ...]] = []
    for ch in normalize(text):
        if _is_han(ch):
            pieces.append(readings(ch) or (ch,))
        else:
            folded = fold_latin(ch)
            if folded:
                pieces.append((folded,))
    keys: list[str] = []
    for combo in itertools.islice(itertools.product(*pieces), MAX_COMBINATIONS):
        keys.append("".join(combo))
    return keys


def query_key(text: str) -> str:
    """What the user typed, folded like the index; Han characters take their first reading."""
    keys = index_keys(text)
    return keys[0] if keys else ""


PINYIN = Normalizer(index=index_keys, query=query_key, whole_name=True)
