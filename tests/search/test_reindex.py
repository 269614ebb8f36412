"""``phix reindex`` and :func:`find` on the real database."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx

from phix.search.cli import reindex
from phix.search.registry import load_registry
from phix.search.service import find

TABLES = (
    "search_string",
    "search_token",
    "search_date",
    "search_number",
    "search_quantity",
    "search_reference",
    "search_uri",
)


async def test_reindex_rebuilds_a_wiped_index(seeded: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    registry = load_registry(None)
    before = await find(conn, registry, "Observation", [("code", "2345-7")])
    assert sorted(i for _, i in before) == ["o-glu1", "o-glu2"]
    counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    for table in TABLES:
        await conn.execute(f"DELETE FROM {table}")
    assert await find(conn, registry, "Observation", [("code", "2345-7")]) == []
    done = await reindex(conn, registry, batch=4)
    assert done == await conn.fetchval("SELECT count(*) FROM resources WHERE NOT deleted")
    assert await find(conn, registry, "Observation", [("code", "2345-7")]) == before
    # the server indexed with profiles/ (name-pinyin strings); this registry has none
    after = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    assert {t: after[t] for t in TABLES if t != "search_string"} == {
        t: counts[t] for t in TABLES if t != "search_string"
    }


async def test_a_new_profile_parameter_indexes_existing_data_after_reindex(
    seeded: httpx.AsyncClient, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    sp = {
        "resourceType": "SearchParameter",
        "url": "https://fhir.putian.gov.cn/SearchParameter/encounter-provider-name",
        "code": "class-code",
        "base": ["Encounter"],
        "type": "token",
        "expression": "Encounter.class",
    }
    (tmp_path / "SearchParameter-class-code.json").write_text(json.dumps(sp), encoding="utf-8")
    registry = load_registry(tmp_path)
    assert await find(conn, registry, "Encounter", [("class-code", "AMB")]) == []
    await reindex(conn, registry, types=["Encounter"])
    assert [i for _, i in await find(conn, registry, "Encounter", [("class-code", "AMB")])] == ["e1"]


async def test_find_limit_and_deleted(seeded: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    registry = load_registry(None)
    assert len(await find(conn, registry, "Patient", [], limit=2)) == 2
    assert (await seeded.delete("/Patient/p3")).status_code in (200, 204)
    assert [i for _, i in await find(conn, registry, "Patient", [])] == ["p1", "p2"]


async def test_find_inside_and_outside_a_transaction(
    seeded: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    registry = load_registry(None)
    async with conn.transaction():
        assert [i for _, i in await find(conn, registry, "Patient", [("gender", "male")])] == ["p1"]
        assert conn.is_in_transaction()
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    assert await conn.fetchval("SHOW plan_cache_mode") == "auto"  # SET LOCAL ended with it
    assert [i for _, i in await find(conn, registry, "Patient", [("gender", "male")])] == ["p1"]
    assert not conn.is_in_transaction()
    assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
