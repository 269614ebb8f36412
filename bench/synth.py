"""Benchmark ``phix synth``: residents/s, resources/s and peak RSS.

    .venv/bin/python bench/synth.py                      # 100,000 residents without DICOM, 10,000 with
    .venv/bin/python bench/synth.py --residents 20000 --dicom-residents 2000

Each run is a separate ``phix synth`` process (its own peak RSS, measured with wait4). Output goes
to ``bench/out/`` (git-ignored) and is deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(residents: int, seed: int, out: Path, dicom: bool, keep: bool) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "phix.cli", "synth", "--seed", str(seed), "--residents", str(residents),
           "--out", str(out), "--no-progress"]  # fmt: skip
    if not dicom:
        cmd.append("--no-dicom")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"phix synth failed: {' '.join(cmd)}")
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    result = {
        "residents": residents,
        "dicom": dicom,
        "seconds": round(elapsed, 1),
        "residents_per_s": round(residents / elapsed),
        "records": counts["records"],
        "resources": counts["resources_total"],
        "resources_per_s": round(counts["resources_total"] / elapsed),
        "bundles": counts["bundles"],
        "dicom_files": counts["dicom_instances"],
        "output_mb": round(size / 1e6),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # ru_maxrss is in KiB on Linux
    }
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--residents", type=int, default=100_000, help="size of the run without DICOM")
    parser.add_argument(
        "--dicom-residents", type=int, default=10_000, help="size of the run with DICOM (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "synth")
    parser.add_argument("--keep", action="store_true", help="keep the generated output")
    args = parser.parse_args()
    runs = [(args.residents, False)]
    if args.dicom_residents:
        runs.append((args.dicom_residents, True))
    for residents, dicom in runs:
        result = run(residents, args.seed, args.out / ("dicom" if dicom else "fhir"), dicom, args.keep)
        r = result
        print(
            f"{r['residents']:>7} residents {'with' if dicom else 'without'} DICOM: {r['seconds']} s, "
            f"{r['residents_per_s']} residents/s, {r['resources']} resources ({r['resources_per_s']}/s), "
            f"{r['records']} records, {r['bundles']} bundles, {r['dicom_files']} DICOM files, "
            f"{r['output_mb']} MB, peak RSS {r['peak_rss_mb']} MB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
