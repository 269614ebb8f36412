"""The ground truth maps every Patient record to its resident, and its error flags are true."""

from __future__ import annotations

from collections import Counter

from phix.identity import gb11643, systems
from phix.identity.areas import is_putian

from .conftest import DataSet

NAME_ERRORS = {
    "name_typo",
    "name_homophone",
    "name_lookalike",
    "name_traditional",
    "name_pinyin",
    "newborn_unnamed",
}
ID_ERRORS = {"id_missing", "id_typo_invalid", "id_typo_valid", "id_format", "id_legacy15", "newborn_unnamed"}


def _patients(data: DataSet) -> dict[tuple[str, str], tuple[str, dict]]:
    found = {}
    for name, bundle in data.bundles():
        for entry in bundle["entry"]:
            res = entry["resource"]
            if res["resourceType"] == "Patient":
                mrn = next(i for i in res["identifier"] if i["system"].endswith("/mrn"))
                found[(mrn["system"], mrn["value"])] = (name, res | {"fullUrl": entry["fullUrl"]})
    return found


def test_every_record_has_exactly_one_row(rich: DataSet) -> None:
    rows = rich.ground_truth()
    patients = _patients(rich)
    keys = [(r["mrn_system"], r["mrn"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(patients) == rich.manifest["counts"]["records"]
    residents = rich.residents()
    assert len(residents) == rich.manifest["residents"] == 120
    for row in rows:
        bundle, patient = patients[(row["mrn_system"], row["mrn"])]
        assert row["bundle"] == bundle
        assert row["patient_fullurl"] == patient["fullUrl"]
        assert row["resident_key"] in residents
        assert patient["birthDate"] == row["recorded_birth_date"]
        assert patient["gender"] == row["recorded_sex"]
        assert patient["name"][0]["text"] == row["recorded_name"]
        ids = [i["value"] for i in patient["identifier"] if i["system"] == systems.RESIDENT_ID]
        assert ids == ([row["recorded_resident_id"]] if row["recorded_resident_id"] else [])


def test_error_flags_match_the_differences(rich: DataSet) -> None:
    residents = rich.residents()
    kinds: Counter[str] = Counter()
    for row in rich.ground_truth():
        truth = residents[row["resident_key"]]
        errors = set(filter(None, row["error_kinds"].split(";")))
        kinds.update(errors)
        if not errors & NAME_ERRORS:
            assert row["recorded_name"] == truth["name"]
        elif errors & {"name_traditional", "name_pinyin", "newborn_unnamed"}:
            assert row["recorded_name"] != truth["name"]
        assert (row["recorded_sex"] != truth["sex"]) == ("sex_wrong" in errors)
        if not errors & {"dob_swapped", "dob_typo"}:
            assert row["recorded_birth_date"] == truth["birth_date"]
        else:
            assert row["recorded_birth_date"] != truth["birth_date"]
        recorded = row["recorded_resident_id"]
        if errors & {"id_missing", "newborn_unnamed"}:
            assert recorded == ""
            continue
        normalized = gb11643.normalize(recorded)
        if "id_format" in errors:
            assert recorded != normalized
        else:
            assert recorded == normalized
        if "id_typo_invalid" in errors:
            if len(normalized) == 18:
                assert not gb11643.is_valid(normalized)
            assert gb11643.to18(normalized) != truth["resident_id"]
        elif "id_typo_valid" in errors:
            assert gb11643.is_valid(normalized) and normalized != truth["resident_id"]
        elif "id_legacy15" in errors:
            assert normalized == truth["legacy_id15"]
            assert gb11643.upgrade15(normalized) == truth["resident_id"]
        else:
            assert normalized == truth["resident_id"]
    assert sum(kinds.values()) > 0
    assert dict(sorted(kinds.items())) == rich.manifest["errors"]


def test_residents_have_valid_unique_ids(rich: DataSet, sample: DataSet) -> None:
    for data in (rich, sample):
        residents = data.residents()
        ids = [r["resident_id"] for r in residents.values()]
        assert len(set(ids)) == len(ids)
        putian = 0
        for r in residents.values():
            rid = r["resident_id"]
            assert gb11643.is_valid(rid)
            assert gb11643.birth_date(rid).isoformat() == r["birth_date"]  # type: ignore[union-attr]
            assert gb11643.sex(rid) == r["sex"]
            putian += is_putian(rid[:6])
            if r["legacy_id15"]:
                assert gb11643.upgrade15(r["legacy_id15"]) == rid
            if r["same_name_dob_as"]:
                other = residents.get(r["same_name_dob_as"])
                if other:
                    assert (other["name"], other["birth_date"]) == (r["name"], r["birth_date"])
        assert putian / len(residents) > 0.9


def test_households_share_address_and_phone(sample: DataSet) -> None:
    households: dict[str, list[dict[str, str]]] = {}
    for r in sample.residents().values():
        households.setdefault(r["household"], []).append(r)
    assert any(len(m) >= 3 for m in households.values())
    for members in households.values():
        assert len({m["address"] for m in members}) == 1
        for m in members:
            if m["mother_key"]:
                assert m["mother_key"] in {x["resident_key"] for x in members}
            if not m["mobile"]:
                assert (
                    m["household_phone"] in {x["mobile"] for x in members} or len(m["household_phone"]) == 11
                )
