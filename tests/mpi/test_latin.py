"""Latin-script records (pinyin-only registrations, foreign residents): blocking keys, word-wise
addresses, partial names, the frequency cap on blocking keys and name counts per resident."""

from __future__ import annotations

from typing import Any

import asyncpg

from phix.mpi import blocking, store
from phix.mpi import normalize as n
from phix.mpi.bulk import store_patients
from phix.mpi.config import default_model
from phix.mpi.engine import Engine
from phix.mpi.features import from_patient
from phix.mpi.scoring import Scorer, compare_address, compare_name

OTHER = "urn:example:insurance"


def latin(
    family: str, given: str, birth: str | None, address: str, member: str | None = None
) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "name": [{"use": "official"}]}
    if family:
        res["name"][0]["family"] = family
    if given:
        res["name"][0]["given"] = [given]
    if birth:
        res["birthDate"] = birth
    res["address"] = [{"text": address}]
    if member:
        res["identifier"] = [{"system": OTHER, "value": member}]
    return res


def test_latin_addresses_keep_their_words() -> None:
    tokens = n.address("202 Francis Chambers, Leven-Street  TORONTO 3228")
    assert tokens is not None and tokens.rest == "202 francis chambers leven street toronto 3228"
    han = n.address("福建省莆田市荔城区拱辰街道学园社区学园南街12号")
    assert han is not None and han.town == "拱辰街道"  # Chinese addresses are parsed as before


def test_latin_addresses_compare_word_wise() -> None:
    a = from_patient("a", latin("dixon", "jade", None, "202 francis chambers leven street toronto 3228 nsw"))
    swapped = from_patient(
        "b", latin("dixon", "jade", None, "202 leven street francis chambers toronto 3228 nsw")
    )
    shorter = from_patient("c", latin("dixon", "jade", None, "202 leven street toronto 3228 nsw"))
    elsewhere = from_patient(
        "d", latin("dixon", "jade", None, "7 cleland street mundine cherrybrook 6025 vic")
    )
    assert compare_address(a, swapped) == "locality"
    assert compare_address(a, shorter) in ("locality", "town")
    assert compare_address(a, elsewhere) == "disagree"


def test_blocking_keys_of_latin_records() -> None:
    f = from_patient("a", latin("westbrook", "jake", "1950-11-11", "15 booroondara street salisbury 2074"))
    keys = blocking.keys(f)
    assert {"nl:jake", "nl:westbrook", "an:15|2074"} <= set(keys)
    reversed_name = from_patient("b", latin("jake", "westbrook", "1900-11-15", "24 booroondara st 2704"))
    assert set(f.hashes) & set(reversed_name.hashes)  # still blocked together
    # Han-script records get no such keys
    han = from_patient("c", {"resourceType": "Patient", "name": [{"family": "陈", "given": ["伟"]}]})
    assert not [k for k in blocking.keys(han) if k.startswith(("nl:", "an:"))]
    # EM learns from the specific keys only
    assert len(blocking.hashes(f, broad=False)) < len(blocking.hashes(f))


def test_a_name_with_one_part_recorded_agrees_in_part() -> None:
    assert compare_name(n.latin_name("", "mitchell"), n.latin_name("boyle", "mitchell")) == "fuzzy"
    assert compare_name(n.latin_name("mcgregor", ""), n.latin_name("mcgregor", "thomas")) == "fuzzy"
    assert compare_name(n.latin_name("smith", ""), n.latin_name("jones", "mary")) == "disagree"


def test_name_frequency_leaves_out_the_candidates_own_resident() -> None:
    """A name carried by one resident only: agreeing on it is not evidence that it is common."""
    a = from_patient("a", latin("cassimatis", "benjamin", "1950-01-01", "23 yacklin"))
    b = from_patient("b", latin("cassimatis", "benjamin", "1950-01-01", "23 yacklin"))
    counts = {"cassimatisbenjamin": 1}

    def share(key: str, minus: int = 0) -> float:
        return (max(counts.get(key, 0) - minus, 0) + 1.0) / (10_000 + 2000)

    plain = Scorer(default_model(), share).score(a, b).weights["name"]
    fair = Scorer(default_model(), share, 0, lambda key: share(key, 1)).score(a, b).weights["name"]
    assert fair == plain + 1.0


async def link(conn: asyncpg.Connection, engine: Engine, records: list[tuple[str, dict[str, Any]]]) -> None:
    items = await store_patients(conn, records)
    outcomes = await engine.link(conn, items)
    assert all(o.status != "deferred" for o in outcomes)


async def test_keys_shared_by_too_many_records_are_skipped(conn: asyncpg.Connection) -> None:
    model = default_model().model_copy(
        update={"blocking": default_model().blocking.model_copy(update={"max_per_key": 3})}
    )
    engine = Engine(model=model)
    home = "1 nursing home road springfield 4000"
    residents = [
        (f"r{i}", latin(f"family{i}", f"given{i}", f"19{10 + i}-01-0{1 + i % 9}", home)) for i in range(6)
    ]
    await link(conn, engine, residents)
    shared = blocking.key_hash(f"ad:{n.address(home).rest}")  # type: ignore[union-attr]
    assert shared in engine.common_keys()
    # the same person again, found through the keys that are still informative
    again = latin("family2", "given2", "1912-01-03", home, member="X1")
    await link(conn, engine, [("again", again)])
    rows = await conn.fetch(
        "SELECT patient_id, golden_id FROM mpi_record WHERE patient_id IN ('r2', 'again')"
    )
    assert len({r["golden_id"] for r in rows}) == 1
    assert len({r["golden_id"] for r in await conn.fetch("SELECT golden_id FROM mpi_record")}) == 6
    # a read that respects the cap skips the key; one without it samples it
    assert not [r for r in await store.candidates(conn, [shared], 3, set()) if r[0] == shared]
    assert len(await store.candidates(conn, [shared], 3)) == 3


async def test_names_are_counted_per_resident(conn: asyncpg.Connection) -> None:
    engine = Engine()
    same = [
        (f"s{i}", latin("stubbs", "jack", "1983-02-23", "150 curnow place st agnes 5344", "M1"))
        for i in range(3)
    ]
    await link(conn, engine, [*same, ("o", latin("stubbs", "jack", "1941-07-30", "9 other road 2000", "M2"))])
    names = store.NameCounts()
    await names.prefetch(conn, ["stubbsjack"])
    assert names.count("stubbsjack") == 2 and names.total == 4 and names.residents == 2


def test_a_transposed_birth_year_is_close_when_the_names_agree() -> None:
    a = from_patient("a", latin("frahn", "lauren", "1918-07-01", "5 solomon crescent 2570"))
    b = from_patient("b", latin("frahn", "laurex", "1981-07-01", "5 solomon crescent 2570"))
    other = from_patient("c", latin("smith", "mary", "1981-07-01", "5 solomon crescent 2570"))
    scorer = Scorer(default_model())
    assert scorer.score(a, b).levels["birth"] == "close"
    assert scorer.score(a, other).levels["birth"] == "disagree"  # different names: two people


def test_scores_do_not_depend_on_which_record_comes_first() -> None:
    """Two spellings of a name: the commoner one sets the name weight, whichever record is linked
    second (the record being linked is not counted yet; the candidate's own resident is left out)."""
    a = from_patient("a", latin("elrick", "kayla", "1925-02-02", "95 jardine street 2610"))
    b = from_patient("b", latin("elrick", "kayl", "1925-02-02", "95 jardine street 2160"))
    ka, kb = a.name.key, b.name.key  # type: ignore[union-attr]

    def scorer(counts: dict[str, int]) -> Scorer:
        def share(key: str, minus: int = 0) -> float:
            return (max(counts.get(key, 0) - minus, 0) + 1.0) / 12_000

        return Scorer(default_model(), share, 0, lambda key: share(key, 1))

    b_second = scorer({ka: 40, kb: 0}).score(b, a)  # a (and 39 others) indexed, b arrives
    a_second = scorer({ka: 39, kb: 1}).score(a, b)  # b (and 39 others named like a), a arrives
    assert b_second.levels["name"] == a_second.levels["name"] == "phonetic"
    assert b_second.total == a_second.total
