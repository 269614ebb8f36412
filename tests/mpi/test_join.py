"""The engine joins residents it made itself when a record matches both with certainty; it never
does so against a steward's decision or across conflicting resident IDs."""

from __future__ import annotations

from typing import Any

import asyncpg

from phix.mpi import links
from phix.mpi.bulk import store_patients
from phix.mpi.engine import ENGINE_ACTOR, Engine
from phix.mpi.stewardship import Steward

from .factories import patient, resident_id

ID = resident_id("1980-05-17", 22)
TWIN_ID = resident_id("1980-05-17", 24)
PHONE = "13812345678"


def phone_only() -> dict[str, Any]:
    """The person known by name, birth date and phone (no ID)."""
    return patient("陈", "丽华", phone=PHONE, org="ptsdyyy", mrn="A1")


def id_only(rid: str = ID) -> dict[str, Any]:
    """The same name and birth date with a resident ID and another phone: probable, not certain."""
    return patient("陈", "丽华", rid=rid, phone="13900001111", org="ptxyfsyy", mrn="C1")


def bridge(rid: str = ID) -> dict[str, Any]:
    """ID *and* phone: certain for both records above."""
    return patient("陈", "丽华", rid=rid, phone=PHONE, org="ptszyy", mrn="B1")


async def link(conn: asyncpg.Connection, engine: Engine, *records: tuple[str, dict[str, Any]]) -> None:
    items = await store_patients(conn, list(records))
    outcomes = await engine.link(conn, items)
    assert all(o.status != "deferred" for o in outcomes)


async def residents_of(conn: asyncpg.Connection, *pids: str) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT patient_id, golden_id FROM mpi_record WHERE patient_id = ANY($1::text[])", list(pids)
    )
    return {r["patient_id"]: r["golden_id"] for r in rows}


async def test_a_record_certain_for_two_engine_residents_joins_them(conn: asyncpg.Connection) -> None:
    engine = Engine()
    await link(conn, engine, ("a", phone_only()), ("c", id_only()))
    before = await residents_of(conn, "a", "c")
    assert before["a"] != before["c"]  # probable only: two residents and a review item
    await link(conn, engine, ("b", bridge()))
    after = await residents_of(conn, "a", "b", "c")
    assert len(set(after.values())) == 1
    survivor = after["a"]
    loser = before["c"] if survivor == before["a"] else before["a"]
    event = await conn.fetchrow("SELECT * FROM mpi_event WHERE action = 'merge'")
    assert event["actor"] == ENGINE_ACTOR and not event["manual"]
    assert (event["golden_id"], event["previous_golden_id"]) == (survivor, loser)
    assert "joined by the engine" in event["reason"]
    status = await conn.fetchrow("SELECT status, merged_into FROM mpi_golden WHERE golden_id = $1", loser)
    assert (status["status"], status["merged_into"]) == ("merged", survivor)
    golden = await conn.fetchval(
        "SELECT body FROM resources WHERE res_type = 'Patient' AND res_id = $1", survivor
    )
    assert all(f"Patient/{p}".encode() in golden for p in ("a", "b", "c"))
    assert not await conn.fetchval("SELECT count(*) FROM mpi_review WHERE status = 'open'")  # settled

    # A steward can undo the join exactly; the engine then never joins the two again.
    steward = Steward(engine, "steward")
    await steward.unmerge(conn, loser, "not the same person after all")
    restored = await residents_of(conn, "a", "c")
    assert restored == before
    await link(conn, engine, ("d", patient("陈", "丽华", rid=ID, phone=PHONE, org="pthjyy", mrn="D1")))
    assert len(set((await residents_of(conn, "a", "c")).values())) == 2
    kinds = await conn.fetch("SELECT kind FROM mpi_review WHERE status = 'open' AND patient_id = 'd'")
    assert [r["kind"] for r in kinds] == ["possible-duplicate"]


async def test_the_join_also_happens_within_one_batch(conn: asyncpg.Connection) -> None:
    await link(conn, Engine(), ("a", phone_only()), ("c", id_only()), ("b", bridge()))
    assert len(set((await residents_of(conn, "a", "b", "c")).values())) == 1


async def test_different_resident_ids_are_never_joined(conn: asyncpg.Connection) -> None:
    """Twins: the same name and birthday, two valid IDs. A record with one twin's ID and the
    other's phone is certain for both (a mistyped order code is possible), but the residents stay
    apart and a steward is asked."""
    engine = Engine()
    await link(
        conn,
        engine,
        ("a", patient("陈", "丽华", rid=ID, phone=PHONE, org="ptsdyyy", mrn="A1")),
        ("c", id_only(TWIN_ID)),
    )
    await link(conn, engine, ("b", bridge(TWIN_ID)))
    found = await residents_of(conn, "a", "b", "c")
    assert found["a"] != found["c"]
    assert not await conn.fetchval("SELECT count(*) FROM mpi_event WHERE action = 'merge'")
    kinds = await conn.fetch("SELECT kind FROM mpi_review WHERE status = 'open' AND patient_id = 'b'")
    assert [r["kind"] for r in kinds] == ["possible-duplicate"]


async def test_a_stewards_decision_is_never_overridden(conn: asyncpg.Connection) -> None:
    engine = Engine()
    await link(conn, engine, ("a", phone_only()), ("c", id_only()))
    await Steward(engine, "steward").distinct(conn, "a", "c", "two people")
    await link(conn, engine, ("b", bridge()))
    found = await residents_of(conn, "a", "b", "c")
    assert found["a"] != found["c"]
    assert not await conn.fetchval("SELECT count(*) FROM mpi_event WHERE action = 'merge'")
    history = await links.history(conn, "b")
    assert [e["action"] for e in history][:1] == ["link"]
