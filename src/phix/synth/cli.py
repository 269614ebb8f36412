"""``phix synth`` and ``phix load`` sub-commands."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from phix.synth.frontdesk import ErrorModel


def _rate(text: str) -> tuple[str, float]:
    kind, _, value = text.partition("=")
    try:
        return kind.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KIND=PROBABILITY, got {text!r}") from None


def register(subparsers: Any) -> None:
    synth = subparsers.add_parser("synth", help="generate the synthetic Putian population")
    synth.add_argument("--seed", type=int, default=42)
    synth.add_argument("--residents", type=int, default=1000)
    synth.add_argument(
        "--out", type=Path, required=True, help="output directory (created; replaced if a previous output)"
    )
    synth.add_argument(
        "--reference-date",
        type=dt.date.fromisoformat,
        default=dt.date(2026, 6, 30),
        help="the generator's 'today' (default 2026-06-30)",
    )
    synth.add_argument(
        "--no-dicom", action="store_true", help="plan ImagingStudy resources but write no DICOM files"
    )
    synth.add_argument(
        "--dicom-limit", type=int, default=None, help="write DICOM files for the first N studies only"
    )
    synth.add_argument("--no-ndjson", action="store_true", help="skip the NDJSON export")
    synth.add_argument(
        "--imaging-rate", type=float, default=0.015, help="chance an encounter includes imaging"
    )
    synth.add_argument(
        "--error-scale", type=float, default=1.0, help="multiply every front-desk error rate (0 = clean)"
    )
    synth.add_argument(
        "--error-rate",
        type=_rate,
        action="append",
        default=[],
        metavar="KIND=P",
        help="set one error probability, e.g. name_pinyin=0.1",
    )
    synth.add_argument("--bundle-patients", type=int, default=200, help="patients per transaction bundle")
    synth.add_argument("--no-progress", action="store_true")
    synth.set_defaults(func=run_synth)

    load = subparsers.add_parser("load", help="push a synth output's bundles to a FHIR server")
    load.add_argument("dir", type=Path)
    load.add_argument("--url", required=True, help="FHIR base URL, e.g. http://127.0.0.1:8080/fhir")
    load.add_argument("--concurrency", type=int, default=4)
    load.add_argument("--retries", type=int, default=3)
    load.add_argument("--timeout", type=float, default=300.0, help="seconds per bundle request")
    load.add_argument("--restart", action="store_true", help="ignore the journal and load everything again")
    load.add_argument("--no-progress", action="store_true")
    load.set_defaults(func=run_load)


def run_synth(args: argparse.Namespace) -> int:
    from phix.synth.writer import SynthConfig, generate

    errors = ErrorModel().scaled(args.error_scale)
    if args.error_rate:
        errors = errors.with_rates(dict(args.error_rate))
    cfg = SynthConfig(
        seed=args.seed,
        residents=args.residents,
        out=args.out,
        reference=args.reference_date,
        dicom=not args.no_dicom,
        dicom_limit=args.dicom_limit,
        ndjson=not args.no_ndjson,
        errors=errors,
        imaging_rate=args.imaging_rate,
        bundle_patients=args.bundle_patients,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    manifest = generate(cfg)
    counts = manifest["counts"]
    print(
        f"{manifest['residents']} residents, {counts['records']} institution records, "
        f"{counts['resources_total']} resources in {counts['bundles']} bundles, "
        f"{counts['dicom_studies']} DICOM studies ({counts['dicom_instances']} files) -> {args.out}"
    )
    return 0


def run_load(args: argparse.Namespace) -> int:
    from phix.synth.load import load

    summary = load(
        args.dir,
        args.url,
        concurrency=args.concurrency,
        retries=args.retries,
        timeout=args.timeout,
        restart=args.restart,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(summary.render())
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0
