"""Property tests for the GB 11643-1999 resident ID helpers."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phix.identity import gb11643
from phix.identity.areas import PUTIAN_AREA_CODES, area_name, is_putian

areas = st.sampled_from([*sorted(PUTIAN_AREA_CODES), "110101", "440305"])
births = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2026, 6, 30))
orders = st.integers(min_value=0, max_value=999)
ids18 = st.builds(gb11643.make, areas, births, orders)
legacy_births = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31))

FULL_WIDTH = {ord(c): chr(ord(c) + 0xFEE0) for c in "0123456789Xx"}


def test_known_examples() -> None:
    # The worked example of GB 11643-1999 (Beijing, 1949-12-31, order 999).
    assert gb11643.check_char("11010519491231002") == "X"
    assert gb11643.is_valid("11010519491231002X")
    assert gb11643.is_valid("11010519491231002x")
    assert not gb11643.is_valid("110105194912310021")
    assert gb11643.upgrade15("110105491231002") == "11010519491231002X"
    assert gb11643.sex("11010519491231002X") == "female"
    assert gb11643.birth_date("110105491231002") == dt.date(1949, 12, 31)


@given(ids18)
def test_made_ids_are_valid_and_decode(id18: str) -> None:
    assert gb11643.is_valid(id18)
    assert gb11643.birth_date(id18) == dt.date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))
    assert gb11643.area_code(id18) == id18[:6]
    assert gb11643.sex(id18) == ("male" if int(id18[16]) % 2 else "female")


@given(ids18)
def test_normalize_full_width_and_lower_x(id18: str) -> None:
    typed = "  " + id18.lower().translate(FULL_WIDTH) + " "
    assert gb11643.normalize(typed) == id18
    assert gb11643.is_valid(typed)


@given(ids18, st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=9))
def test_single_digit_change_breaks_checksum(id18: str, pos: int, delta: int) -> None:
    changed = id18[:pos] + str((int(id18[pos]) + delta) % 10) + id18[pos + 1 :]
    # Weights are non-zero mod 11, so any single-digit substitution changes the check.
    assert gb11643.check_char(changed[:17]) != id18[17]
    assert not gb11643.is_valid(changed)


@given(ids18)
def test_transposition_of_different_digits_breaks_checksum(id18: str) -> None:
    for i in range(16):
        a, b = id18[i], id18[i + 1]
        if a != b:
            swapped = id18[:i] + b + a + id18[i + 2 :]
            assert not gb11643.is_valid(swapped)


@given(areas, legacy_births, orders)
def test_upgrade15_roundtrip(area: str, born: dt.date, order: int) -> None:
    id15 = f"{area}{born:%y%m%d}{order:03d}"
    id18 = gb11643.upgrade15(id15)
    assert gb11643.is_valid(id18)
    assert id18 == gb11643.make(area, born, order)
    assert gb11643.to18(id15) == id18
    assert gb11643.birth_date(id15) == gb11643.birth_date(id18) == born
    assert gb11643.sex(id15) == gb11643.sex(id18)
    assert gb11643.area_code(id15) == area


@given(st.text(max_size=20))
def test_garbage_never_raises(text: str) -> None:
    assert gb11643.is_valid(text) in (True, False)
    gb11643.birth_date(text)
    gb11643.sex(text)
    gb11643.area_code(text)
    assert gb11643.to18(text) is None or gb11643.is_valid(gb11643.to18(text) or "")


def test_invalid_dates_rejected() -> None:
    first17 = "35030419900230123"  # 30 February
    assert not gb11643.is_valid(first17 + gb11643.check_char(first17))
    assert gb11643.birth_date(first17 + "0") is None
    with pytest.raises(ValueError):
        gb11643.upgrade15("350321900230123")
    with pytest.raises(ValueError):
        gb11643.check_char("1234")


def test_putian_areas() -> None:
    assert is_putian("350321") and area_name("350321") == "莆田县"
    assert not is_putian("350102")
    assert area_name("350102") is None
