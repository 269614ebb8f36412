"""Accuracy on the synthetic Putian population (small N), against the generator's ground truth."""

from __future__ import annotations

import itertools
from collections import defaultdict

import asyncpg

from phix.mpi.bulk import link_items, relink_stored, store_patients
from phix.mpi.engine import Engine
from phix.synth.frontdesk import ErrorModel
from phix.synth.population import PopulationGenerator
from phix.synth.visits import Registry, patient
from phix.synth.writer import REFERENCE_DATE


def pairs(clusters: dict[str, str]) -> set[tuple[str, str]]:
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for pid, cluster in clusters.items():
        groups[cluster].append(pid)
    return {p for members in groups.values() for p in itertools.combinations(sorted(members), 2)}


async def test_synthetic_population_pairwise_f1(conn: asyncpg.Connection) -> None:
    seed = 5
    generator = PopulationGenerator(seed, REFERENCE_DATE)
    registry = Registry(seed, REFERENCE_DATE, ErrorModel())
    records = [rec for household in generator.residents(400) for rec in registry.records(household)]
    truth = {r.patient_id: r.resident.key for r in records}
    items = await store_patients(conn, [(r.patient_id, patient(r, with_id=False)) for r in records])
    engine = Engine()
    async for outcomes in link_items(conn, engine, items, batch=100):
        assert all(o.status != "deferred" for o in outcomes)
    rows = await conn.fetch("SELECT patient_id, golden_id FROM mpi_record")
    found = {r["patient_id"]: r["golden_id"] for r in rows}
    assert set(found) == set(truth)
    expected, predicted = pairs(truth), pairs(found)
    tp = len(expected & predicted)
    precision, recall = tp / len(predicted), tp / len(expected)
    f1 = 2 * precision * recall / (precision + recall)
    assert len(records) > 700 and f1 >= 0.98, (precision, recall, f1)
    # every resident's golden record links exactly its sources
    goldens = await conn.fetch("SELECT golden_id FROM mpi_golden WHERE status = 'active'")
    assert len(goldens) == len(set(found.values()))


async def test_bulk_linking_on_two_connections_links_every_record_once(
    conn: asyncpg.Connection, db_url: str
) -> None:
    """Two batches at a time: the engine's locks defer records whose keys the other batch holds,
    and link_items links those again at the end; the result is as good as one batch at a time."""
    seed = 11
    generator = PopulationGenerator(seed, REFERENCE_DATE)
    registry = Registry(seed, REFERENCE_DATE, ErrorModel())
    records = [rec for household in generator.residents(300) for rec in registry.records(household)]
    truth = {r.patient_id: r.resident.key for r in records}
    items = await store_patients(conn, [(r.patient_id, patient(r, with_id=False)) for r in records])
    second = await asyncpg.connect(db_url)
    try:
        seen: list[str] = []
        async for outcomes in link_items(conn, Engine(), items, batch=60, more=[second]):
            assert all(o.status != "deferred" for o in outcomes)
            seen += [o.patient_id for o in outcomes]
    finally:
        await second.close()
    assert sorted(seen) == sorted(truth)
    found = {r["patient_id"]: r["golden_id"] for r in await conn.fetch("SELECT * FROM mpi_record")}
    expected, predicted = pairs(truth), pairs(found)
    assert predicted <= expected  # no false link
    assert len(expected & predicted) / len(expected) >= 0.97
    assert not await conn.fetchval("SELECT count(*) FROM mpi_pending")


async def test_relink_stored_links_what_the_index_does_not_know(
    conn: asyncpg.Connection, db_url: str
) -> None:
    seed = 12
    generator = PopulationGenerator(seed, REFERENCE_DATE)
    registry = Registry(seed, REFERENCE_DATE, ErrorModel())
    records = [rec for household in generator.residents(120) for rec in registry.records(household)]
    await store_patients(conn, [(r.patient_id, patient(r, with_id=False)) for r in records])
    second = await asyncpg.connect(db_url)
    try:
        done = await relink_stored(conn, Engine(), batch=40, more=[second])
    finally:
        await second.close()
    assert done == len(records)
    assert await conn.fetchval("SELECT count(*) FROM mpi_record WHERE golden_id IS NOT NULL") == len(records)
    assert await relink_stored(conn, Engine()) == 0
