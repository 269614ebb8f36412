"""The pinyin normaliser of ``name-pinyin``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phix.search import pinyin
from phix.search.string import extract


def keys_of(family: str, given: list[str], text: str | None = None) -> set[str]:
    name: dict[str, object] = {"family": family, "given": given}
    if text:
        name["text"] = text
    return {row[0] for row in extract([(name, "HumanName")], pinyin.PINYIN)}


def matches(query: str, keys: set[str]) -> bool:
    key = pinyin.query_key(query)
    return bool(key) and any(k.startswith(key) for k in keys)


@pytest.mark.parametrize(
    "query", ["chen ming", "chenming", "Chen Ming", "CHENMING", "Chén Míng", "陈明", "陳明", "chen"]
)
def test_chen_ming_is_found_by_pinyin(query: str) -> None:
    assert matches(query, keys_of("陈", ["明"], "陈明"))


@pytest.mark.parametrize(
    ("family", "reading"),
    [
        ("曾", "zeng"),
        ("单", "shan"),
        ("解", "xie"),
        ("仇", "qiu"),
        ("区", "ou"),
        ("朴", "piao"),
        ("查", "zha"),
    ],
)
def test_surname_readings_that_pypinyin_gets_wrong_by_default(family: str, reading: str) -> None:
    keys = keys_of(family, ["华"])
    assert matches(f"{reading} hua", keys)
    assert matches(reading, keys)


def test_given_name_alone_and_given_family_order() -> None:
    keys = keys_of("王", ["小", "明"])
    assert matches("xiao", keys)
    assert matches("xiaoming wang", keys)
    assert matches("wang xiaoming", keys)
    assert not matches("li", keys)


def test_u_umlaut_and_v_fold_together() -> None:
    keys = keys_of("吕", ["丽"])
    assert matches("lv li", keys) and matches("lü li", keys) and matches("lu li", keys)


def test_latin_names_fold_too() -> None:
    assert matches("zhang", keys_of("Zhang", ["Wei"]))


@given(st.text(alphabet="陈明曾单解张伟李娜 abcxyz", min_size=1, max_size=6))
def test_index_keys_are_folded_latin(text: str) -> None:
    for key in pinyin.index_keys(text):
        assert key == key.lower() and " " not in key and key.isascii()
    assert len(pinyin.index_keys(text)) <= pinyin.MAX_COMBINATIONS
