"""Rules and Fellegi-Sunter scoring on hand-made hard cases."""

from __future__ import annotations

from typing import Any

from phix.mpi.config import default_model
from phix.mpi.features import from_patient
from phix.mpi.scoring import Score, Scorer

from .factories import patient, resident_id

HOME = "福建省莆田市荔城区拱辰街道学园社区学园南街12号3栋401室"
OTHER_HOME = "福建省莆田市仙游县鲤城街道东门村5号"


def score(a: dict[str, Any], b: dict[str, Any], frequency: dict[str, float] | None = None) -> Score:
    table = frequency or {}
    scorer = Scorer(default_model(), lambda key: table.get(key, 0.0005))
    return scorer.score(from_patient("a", a), from_patient("b", b))


def test_same_name_and_birthday_different_people_are_not_linked() -> None:
    a = patient(
        "陈", "伟", gender="male", rid=resident_id("1980-05-17", 11), phone="13812345678", address=HOME
    )
    b = patient(
        "陈",
        "伟",
        gender="male",
        rid=resident_id("1980-05-17", 13, "350322"),
        phone="13900001111",
        address=OTHER_HOME,
    )
    s = score(a, b)
    assert s.grade != "certain" and s.levels["id"] == "disagree"
    # without any identifier, a common name plus a birthday is not enough either
    a2 = patient("陈", "伟", gender="male", phone="13812345678", address=HOME)
    b2 = patient("陈", "伟", gender="male", phone="13900001111", address=OTHER_HOME)
    assert score(a2, b2, {"chenwei": 0.01}).grade != "certain"


def test_same_person_traditional_script_and_id_typo() -> None:
    rid = resident_id("1980-05-17", 22)
    typo = rid[:10] + ("6" if rid[10] != "6" else "7") + rid[11:]  # invalid checksum now
    a = patient("陈", "丽华", rid=rid, phone="13812345678", address=HOME)
    b = patient("陳", "麗華", rid=typo, phone="13812345678", address=HOME)
    s = score(a, b)
    assert s.levels["name"] == "exact" and s.levels["id"] == "typo"
    assert s.grade == "certain"


def test_pinyin_spelling_links_to_han_name() -> None:
    a = patient("曾", "丽华", phone="13812345678", address=HOME)
    b = patient("Zeng", "Lihua", text="Lihua Zeng", phone="+86 138 1234 5678", address=HOME)
    s = score(a, b)
    assert s.levels["name"] == "phonetic" and s.grade == "certain"


def test_same_valid_id_is_certain_unless_contradicted() -> None:
    rid = resident_id("1980-05-17", 22)
    a = patient("陈", "丽华", rid=rid)
    b = patient("陈", "丽华", rid=rid, birth=None, gender=None)
    assert score(a, b).rule == "same-resident-id"
    c = patient("林", "建国", rid=rid, birth="1955-01-02", gender="male")
    s = score(a, c)
    assert s.rule is None and s.grade != "certain"
    assert "contradict" in " ".join(s.notes)


def test_legacy_15_digit_id_matches_its_18_digit_form() -> None:
    rid = resident_id("1950-03-04", 31, "350321")
    legacy = rid[:6] + rid[8:17]
    s = score(
        patient("林", "秀英", rid=rid, birth="1950-03-04"),
        patient("林", "秀英", rid=legacy, birth="1950-03-04"),
    )
    assert s.levels["id"] == "exact" and s.rule == "same-resident-id"


def test_twins_sharing_home_and_phone_are_not_linked() -> None:
    kw: dict[str, Any] = {"birth": "2015-03-04", "gender": "male", "phone": "13812345678", "address": HOME}
    a = patient("林", "俊杰", rid=resident_id("2015-03-04", 11), **kw)
    b = patient("林", "俊峰", rid=resident_id("2015-03-04", 13), **kw)
    s = score(a, b)
    assert s.levels["id"] == "near" and s.grade != "certain"
    # and without IDs the different given name keeps them apart too
    assert score(patient("林", "俊杰", **kw), patient("林", "浩然", **kw)).grade != "certain"


def test_name_frequency_changes_the_name_weight() -> None:
    a = patient("陈", "伟", gender="male")
    common = score(a, a, {"chenwei": 0.02}).weights["name"]
    rare = score(a, a, {"chenwei": 0.00001}).weights["name"]
    assert rare - common > 6


def test_unnamed_newborn_links_by_birth_sex_and_household() -> None:
    newborn = patient(
        "",
        "",
        text="陈丽华之子",
        use="temp",
        birth="2026-01-02",
        gender="male",
        phone="13812345678",
        address=HOME,
    )
    named = patient("陈", "子轩", birth="2026-01-02", gender="male", phone="13812345678", address=HOME)
    s = score(newborn, named)
    assert s.levels["name"] == "missing" and s.grade == "certain"
    mother = patient("陈", "丽华", birth="1995-07-01", gender="female", phone="13812345678", address=HOME)
    assert score(newborn, mother).grade in ("none", "possible")


def test_same_institution_record_number_is_certain() -> None:
    a = patient("陈", "丽华", mrn="M001")
    b = patient("Chen", "Lihua", mrn="M001", birth=None)
    assert score(a, b).rule == "same-institution-identifier"


def test_agreeing_and_disagreeing_fields_are_reported() -> None:
    a = patient("陈", "丽华", phone="13812345678", address=HOME)
    b = patient("陈", "丽华", phone="13900000000", address=HOME)
    s = score(a, b)
    assert "phone" in s.disagreed and {"name", "birth", "address"} <= set(s.agreed)
    assert 0.99 < s.probability(default_model()) <= 1.0


def test_two_valid_ids_far_apart_are_two_people_even_with_name_and_birthday() -> None:
    """Same name, birthday, sex and district, each with a valid ID: different order codes far
    apart are two people, however rare the name; IDs one typo apart may still be one person."""
    rare = {"yujianhua": 1e-7}
    a = patient("余", "建华", birth="1944-08-05", gender="male", rid=resident_id("1944-08-05", 653, "350321"))
    b = patient("余", "建华", birth="1944-08-05", gender="male", rid=resident_id("1944-08-05", 591, "350321"))
    s = score(a, b, rare)
    assert s.grade != "certain" and "different valid resident IDs" in " ".join(s.notes)
    near = patient(
        "余", "建华", birth="1944-08-05", gender="male", rid=resident_id("1944-08-05", 655, "350321")
    )
    assert score(a, near, rare).grade == "certain"
