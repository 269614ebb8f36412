"""Normalisation of Chinese identity data."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from phix.identity import gb11643
from phix.mpi import normalize as n


def test_resident_id_forms_fold_to_one() -> None:
    valid = gb11643.make("350304", __import__("datetime").date(1990, 1, 1), 123)
    spaced = f"{valid[:6]} {valid[6:14]} {valid[14:]}"
    full_width = valid.translate({ord(c): chr(ord(c) + 0xFEE0) for c in "0123456789X"})
    for typed in (valid, spaced, full_width, valid.lower()):
        parsed = n.resident_id(typed)
        assert parsed.id18 == valid and parsed.flags == ()


def test_legacy_15_digit_id_is_upgraded_and_flagged() -> None:
    parsed = n.resident_id("350321500101123")
    assert parsed.id18 == gb11643.upgrade15("350321500101123")
    assert parsed.id18 is not None and parsed.id18.startswith("35032119500101123")
    assert parsed.flags == ("id-legacy15",)


def test_malformed_ids_are_kept_and_flagged() -> None:
    valid = gb11643.make("350302", __import__("datetime").date(1985, 6, 30), 42)
    bad_check = valid[:17] + ("0" if valid[17] != "0" else "1")
    assert n.resident_id(bad_check) == n.ResidentId(bad_check, bad_check, None, ("id-checksum",))
    assert n.resident_id("35030219851340004X").flags == ("id-date",)
    assert n.resident_id("12345").flags == ("id-format",)
    assert n.resident_id("").flags == ("id-format",)


def test_id_distance_counts_substitutions_and_adjacent_swaps() -> None:
    assert n.id_distance("350302198506300423", "350302198506300423") == 0
    assert n.id_distance("350302198506300423", "350302198506300433") == 1
    assert n.id_distance("350302198506300423", "350302198506304023") == 1  # 04 -> 40
    assert n.id_distance("350302198506300423", "3503021985063004") == 99


def test_traditional_names_fold_to_simplified() -> None:
    assert n.parse_name("陳", "麗華", "") == n.parse_name("陈", "丽华", "")
    name = n.parse_name("", "", "歐陽建國")
    assert name is not None and (name.family, name.given, name.han) == ("欧阳", "建国", "欧阳建国")


def test_surname_readings_use_the_surname_table() -> None:
    for surname, reading in {
        "曾": "zeng",
        "单": "shan",
        "解": "xie",
        "仇": "qiu",
        "区": "ou",
        "朴": "piao",
        "查": "zha",
    }.items():
        name = n.parse_name(surname, "伟", "")
        assert name is not None and name.key == reading + "wei", surname
    # heteronyms of given-name characters are all kept: 乐 reads le or yue
    name = n.parse_name("单", "乐", "")
    assert name is not None and set(name.readings) == {"shanle", "shanyue"}


def test_pinyin_names_in_any_order_and_case() -> None:
    forms = [("Chen", "Xiaoming", ""), ("", "", "CHEN XIAOMING"), ("", "", "Chén Xiǎomíng")]
    keys = {n.parse_name(*f).readings for f in forms}  # type: ignore[union-attr]
    assert keys == {("chenxiaoming", "xiaomingchen")}


def test_unnamed_newborns_are_temporary_names() -> None:
    for text in ("陈丽华之子", "林芳之女", "无名氏"):
        name = n.parse_name("", "", text)
        assert name is not None and name.temp
    name = n.parse_name("", "", "Baby", use="temp")
    assert name is not None and name.temp
    assert n.parse_name("", "", "  ") is None


def test_phones_are_e164_like() -> None:
    for typed in (
        "13812345678",
        "+86 138-1234-5678",
        "008613812345678",
        "8613812345678",
        "１３８１２３４５６７８",
    ):
        assert n.phone(typed) == "+8613812345678"
    assert n.phone("0594-2345678") == n.phone("2345678") == "+865942345678"
    assert n.phone("+86 594 2345678") == "+865942345678"
    assert n.phone("12345") is None


def test_address_tokens() -> None:
    a = n.address("福建省莆田市荔城区拱辰街道学园社区学园南街12号3栋401室")
    assert a == n.AddressTokens("荔城区", "拱辰街道", "学园社区", "学园南街12号3栋401室")
    b = n.address("莆田市 荔城區 拱辰街道 學園社區 學園南街12號3棟401室")
    assert b == a
    assert n.address("笏石镇东山村12号") == n.AddressTokens("", "笏石镇", "东山村", "12号")


@given(st.text(max_size=40))
def test_normalisers_never_raise(text: str) -> None:
    n.resident_id(text)
    n.phone(text)
    n.address(text)
    n.parse_name(text[:2], text[2:], text)
