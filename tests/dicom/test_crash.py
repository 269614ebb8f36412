"""The gateway process SIGKILLed in the middle of a study: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

pytestmark = [pytest.mark.usefixtures("clean_sites")]


class GatewayProcess:
    def __init__(self, db_url: str, data_dir: Path, rules: Path, port: int) -> None:
        self.port = port
        self.log = data_dir / "gateway.log"
        self.args = [sys.executable, "-m", "phix.dicom.cli", "gateway", "--data-dir", str(data_dir)]
        self.env = {
            **os.environ,
            "PHIX_DATABASE_URL": db_url,
            "PHIX_DICOM__PORT": str(port),
            "PHIX_DICOM__RULES_FILE": str(rules),
            "PHIX_DICOM__STABLE_SECONDS": "2",
            "PHIX_DICOM__POLL_SECONDS": "0.3",
            "PHIX_DICOM__RETRY_BASE_SECONDS": "0.3",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, kit: Any) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=out)

        async def accepting() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited: {self.log.read_text()[-3000:]}")
            code, _ = await kit.dcmtk(
                "echoscu", "-aet", "XYX_CT", "-aec", "PHIX", "127.0.0.1", str(self.port)
            )
            return code == 0

        await kit.eventually(accepting, timeout=60, every=0.3)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def acknowledged(storescu_log: str) -> list[Path]:
    """The files storescu sent and got a success response for."""
    done, current = [], None
    for line in storescu_log.splitlines():
        match = re.match(r"I: Sending file: (.+)$", line)
        if match:
            current = Path(match.group(1))
        elif "Received Store Response (Success)" in line and current is not None:
            done.append(current)
            current = None
    return done


async def test_sigkill_mid_study_loses_nothing(
    db_url: str, tmp_path: Path, kit: Any, sites: dict[str, Any]
) -> None:
    rules = kit.write_routing(
        tmp_path / "routing.yaml", sites["ptsdyyy"].http_port, sites["ptxyfsyy"].dicom_port
    )
    study = kit.make_study(tmp_path / "s", 150, modality="CT", series=3)
    sop_of = dict(zip(study.paths, study.sop_uids, strict=True))
    gateway = GatewayProcess(db_url, tmp_path / "data", rules, kit.free_port())
    (tmp_path / "data").mkdir()
    store = tmp_path / "data" / "dicom"
    await gateway.start(kit)
    try:
        sender = asyncio.create_task(kit.storescu(gateway.port, "XYX_CT", *study.paths))

        async def some_stored() -> bool:  # acknowledged = in the journal, maybe not yet a file
            journaled = sum(p.stat().st_size for p in (store / "journal").glob("*.wal"))
            return journaled >= 40 * 39_000

        await kit.eventually(some_stored, timeout=60, every=0.01)
        gateway.kill()
        code, log = await sender
        acked = acknowledged(log)
        assert code != 0 and 30 <= len(acked) < 150, (code, len(acked))

        await gateway.start(kit)  # recovery indexes whatever was acknowledged

        async def indexed() -> set[str]:
            conn = await asyncpg.connect(db_url)
            try:
                rows = await conn.fetch("SELECT sop_instance_uid FROM dicom_instances")
            finally:
                await conn.close()
            found = {r["sop_instance_uid"] for r in rows}
            return found if {sop_of[p] for p in acked} <= found else set()

        await kit.eventually(indexed, timeout=30)
        assert not list((store / "incoming").glob("*.dcm"))
        assert len(list((store / "journal").glob("*.wal"))) == 1  # replayed segments are retired
        recovered = [line for line in gateway.log.read_text().splitlines() if '"msg":"recovered"' in line]
        assert recovered and int(re.search(r'"replayed":(\d+)', recovered[-1]).group(1)) >= len(acked)  # type: ignore[union-attr]

        # the modality sends the study again: complete at the site, every instance exactly once
        code, log = await kit.storescu(gateway.port, "XYX_CT", *study.paths)
        assert code == 0, log[-2000:]
        site = sites["ptsdyyy"]

        async def at_site() -> bool:
            return len(site.study_instances(study.uid)) == 150

        await kit.eventually(at_site, timeout=60, every=0.3)
        assert site.new_instance_events() == 150
        assert gateway.stop() == 0
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            gateway.kill()
