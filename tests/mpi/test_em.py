"""Re-estimating the match weights (EM) and the ``phix mpi estimate`` command."""

from __future__ import annotations

import argparse
import random

import asyncpg

from phix.mpi import cli, em
from phix.mpi.bulk import link_items, store_patients
from phix.mpi.config import LEVELS, default_model, load_model, save_model
from phix.mpi.engine import Engine
from phix.synth.frontdesk import ErrorModel
from phix.synth.population import PopulationGenerator
from phix.synth.visits import Registry, patient
from phix.synth.writer import REFERENCE_DATE


def test_em_recovers_known_parameters() -> None:
    rng = random.Random(3)
    true_m = {"id": 0.95, "name": 0.9, "birth": 0.97}
    true_u = {"id": 0.001, "name": 0.01, "birth": 0.003}
    vectors = []
    for n in range(20_000):
        match = n % 5 == 0
        v = {f: "missing" for f in LEVELS}
        for f in true_m:
            p = true_m[f] if match else true_u[f]
            v[f] = LEVELS[f][0] if rng.random() < p else LEVELS[f][-1]
        vectors.append(v)
    u = em.estimate_u([v for i, v in enumerate(vectors) if i % 5])
    m0 = {f: {lvl: 0.5 for lvl in levels} for f, levels in LEVELS.items()}
    m, share, _ = em.em(vectors, m0, u, 0.5)
    assert abs(share - 0.2) < 0.01
    for f, p in true_m.items():
        assert abs(m[f][LEVELS[f][0]] - p) < 0.02, f


async def test_estimate_from_the_index_and_store_a_new_model(conn: asyncpg.Connection) -> None:
    generator = PopulationGenerator(9, REFERENCE_DATE)
    registry = Registry(9, REFERENCE_DATE, ErrorModel())
    records = [rec for household in generator.residents(250) for rec in registry.records(household)]
    items = await store_patients(conn, [(r.patient_id, patient(r, with_id=False)) for r in records])
    async for _ in link_items(conn, Engine(), items, batch=200):
        pass
    result = await em.estimate(conn, default_model(), records=300, random_pairs=5000, iterations=30)
    weights = result.model.weights()
    assert weights["id"]["exact"] > 10 and weights["birth"]["exact"] > 5
    assert weights["birth"]["disagree"] < 0 and weights["id"]["disagree"] < 0
    assert 0 < result.match_share < 1 and len(result.log) == sum(len(v) for v in LEVELS.values())
    version = await save_model(conn, result.model, "test")
    loaded = await load_model(conn)
    assert loaded.version == version and loaded.fields == result.model.fields


def test_the_command_is_registered() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mpi", "estimate", "--records", "10", "--dry-run"])
    assert args.func is cli.estimate_command and args.records == 10 and args.dry_run
    assert parser.parse_args(["mpi", "link"]).func is cli.link_command
