"""Demo data for ``make run``: load ``synthetic_data/`` into a freshly started server, once."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

log = logging.getLogger("phix.demo")

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "synthetic_data"


def _wait_ready(url: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def load_demo_in_background(
    data_dir: Path, fhir_base: str, sample_dir: Path = SAMPLE_DIR
) -> threading.Thread | None:
    """Start a thread that waits for the API and runs ``phix load`` once (marker in ``data_dir``)."""
    marker = Path(data_dir) / "demo-loaded"
    if marker.exists():
        log.info("demo data already loaded", extra={"marker": str(marker)})
        return None
    if not (sample_dir / "manifest.json").exists():
        log.warning("no synthetic sample found; starting without demo data", extra={"dir": str(sample_dir)})
        return None

    def run() -> None:
        root = fhir_base.rsplit("/", 1)[0]
        if not _wait_ready(f"{root}/readyz"):
            log.error("server did not become ready; demo data not loaded")
            return
        print(f"Loading demo data from {sample_dir} ...", flush=True)
        result = subprocess.run(
            [sys.executable, "-m", "phix.cli", "load", str(sample_dir), "--url", fhir_base],
            check=False,
        )
        if result.returncode == 0:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(fhir_base + "\n")
            print("Demo data loaded: a populated Putian is waiting at " + fhir_base, flush=True)
        else:
            log.error("demo data load failed", extra={"returncode": result.returncode})

    thread = threading.Thread(target=run, name="demo-loader", daemon=True)
    thread.start()
    return thread
