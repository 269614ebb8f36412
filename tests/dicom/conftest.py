"""DICOM test fixtures: real peers on 127.0.0.1 -- DCMTK tools, Orthanc reading sites started from
``dicom/orthanc-site.json`` in temporary directories, and the gateway in the test's event loop.

Missing binaries skip the tests that need them, with the reason (install ``dcmtk`` / ``orthanc``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from fastapi import FastAPI
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from phix.app import create_app
from phix.dicom.config import DicomSettings
from phix.dicom.gateway import Gateway
from phix.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ORTHANC_TEMPLATE = REPO / "dicom" / "orthanc-site.json"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

HAVE_DCMTK = all(shutil.which(tool) for tool in ("storescu", "echoscu", "findscu"))
HAVE_ORTHANC = shutil.which("Orthanc") is not None
needs_dcmtk = pytest.mark.skipif(
    not HAVE_DCMTK, reason="DCMTK is not installed (apt-get install dcmtk): DICOM peer tests skipped"
)
needs_orthanc = pytest.mark.skipif(
    not HAVE_ORTHANC,
    reason="Orthanc is not installed (apt-get install orthanc orthanc-dicomweb): reading-site tests skipped",
)

ROUTING = """
contract_role: teleradiology
sites:
  - name: ptsdyyy
    organization: Organization/org-ptsdyyy
    transport: orthanc-rest
    url: http://127.0.0.1:{rest_port}
  - name: ptxyfsyy
    organization: Organization/org-ptxyfsyy
    transport: c-store
    ae_title: PTXYFSYY
    host: 127.0.0.1
    port: {cstore_port}
institutions:
  - code: xtwzwsy
    ae_titles: [XTW_DX, XTW_US]
  - code: xyxyy
    ae_titles: [XYX_CT, XYX_MR]
rules:
  - name: grassroots-teleradiology
    when: {{institutions: [xtwzwsy]}}
    send_to: [contracted]
  - name: county-ct
    when: {{institutions: [xyxyy], modalities: [CT]}}
    send_to: [ptsdyyy]
  - name: county-mr-second-opinion
    when: {{institutions: [xyxyy], modalities: [MR]}}
    send_to: [ptxyfsyy]
    deidentify: true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, every: float = 0.1) -> Any:
    """Await ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        await asyncio.sleep(every)


# -- Orthanc reading sites -------------------------------------------------------------------------


@dataclass
class OrthancSite:
    name: str
    aet: str
    root: Path
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, wait: float = 20.0) -> None:
        storage = self.root / "db"
        storage.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "TCP_NODELAY": "1",
            "ORTHANC_NAME": self.name,
            "ORTHANC_AET": self.aet,
            "ORTHANC_HTTP_PORT": str(self.http_port),
            "ORTHANC_DICOM_PORT": str(self.dicom_port),
            "ORTHANC_STORAGE": str(storage),
            "ORTHANC_REMOTE_ACCESS": "false",
            "ORTHANC_AUTH": "false",
            "ORTHANC_DICOMWEB_PLUGIN": DICOMWEB_PLUGIN,
        }
        log = open(self.root / "orthanc.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(["Orthanc", str(ORTHANC_TEMPLATE)], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/system", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"Orthanc {self.name} did not start: see {self.root / 'orthanc.log'}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def instance_count(self) -> int:
        return int(self.get("/statistics")["CountInstances"])

    def new_instance_events(self) -> int:
        """NewInstance entries in Orthanc's change log: one per instance actually stored."""
        changes = self.get("/changes?limit=10000")["Changes"]
        return sum(1 for c in changes if c["ChangeType"] == "NewInstance")

    def study_instances(self, study_uid: str) -> list[dict[str, Any]]:
        found = httpx.post(
            f"{self.url}/tools/find",
            json={"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}, "Expand": True},
            timeout=10,
        )
        found.raise_for_status()
        result: list[dict[str, Any]] = found.json()
        return result

    def clear(self) -> None:
        for patient in self.get("/patients"):
            httpx.delete(f"{self.url}/patients/{patient}", timeout=10).raise_for_status()
        httpx.delete(f"{self.url}/changes", timeout=10).raise_for_status()


@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, OrthancSite]]:
    """Two reading sites for the whole session: ptsdyyy (REST upload) and ptxyfsyy (C-STORE)."""
    if not HAVE_ORTHANC:
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")
    root = tmp_path_factory.mktemp("orthanc")
    started = {
        "ptsdyyy": OrthancSite("ptsdyyy", "PTSDYYY", root / "ptsdyyy"),
        "ptxyfsyy": OrthancSite("ptxyfsyy", "PTXYFSYY", root / "ptxyfsyy"),
    }
    try:
        for site in started.values():
            site.start()
        yield started
    finally:
        for site in started.values():
            site.stop()


@pytest.fixture
def clean_sites(sites: dict[str, OrthancSite]) -> dict[str, OrthancSite]:
    for site in sites.values():
        site.clear()
    return sites


# -- the gateway -----------------------------------------------------------------------------------


@dataclass
class Running:
    app: FastAPI
    gateway: Gateway
    port: int
    client: httpx.AsyncClient
    settings: DicomSettings
    root: Path

    async def drain(self) -> None:
        await self.gateway.drain()

    async def study(self, uid: str) -> dict[str, Any]:
        response = await self.client.get(f"/dicom/studies/{uid}")
        return response.json() if response.status_code == 200 else {}

    async def delivered(self, uid: str, destination: str) -> bool:
        study = await self.study(uid)
        return any(
            r["destination"] == destination and r["status"] == "delivered" for r in study.get("routes", [])
        )


def write_routing(path: Path, rest_port: int, cstore_port: int, text: str = ROUTING) -> Path:
    path.write_text(text.format(rest_port=rest_port, cstore_port=cstore_port), "utf-8")
    return path


def dicom_settings(root: Path, rules: Path, **overrides: Any) -> DicomSettings:
    values: dict[str, Any] = {
        "ae_title": "PHIX",
        "port": 0,
        "rules_file": rules,
        "storage_dir": root / "dicom",
        "stable_seconds": 2.0,
        "retry_base_seconds": 0.3,
        "retry_max_seconds": 1.0,
        "poll_seconds": 0.3,
        "index_processes": 0,
        "dicomweb_base_url": "http://phix.test/dicomweb",
    }
    values.update(overrides)
    return DicomSettings(**values)


@pytest.fixture
def start_gateway(settings: Settings, tmp_path: Path) -> Callable[..., Any]:
    """``async with start_gateway(rules_path, **dicom_overrides) as running``."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(rules: Path, **overrides: Any) -> AsyncIterator[Running]:
        dsettings = dicom_settings(tmp_path, rules, **overrides)
        app = create_app(settings)
        app.state.role = "gateway"
        app.state.dicom_settings = dsettings
        async with app.router.lifespan_context(app):
            gateway = Gateway(app.state.dicom, "test-secret")
            port = await gateway.start()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://phix.test") as client:
                try:
                    yield Running(app, gateway, port, client, dsettings, tmp_path)
                finally:
                    await gateway.stop()

    return run


# -- DCMTK -----------------------------------------------------------------------------------------


async def dcmtk(*args: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run a DCMTK tool with TCP_NODELAY=1; (exit code, combined output)."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode("utf-8", "replace")


async def storescu(port: int, calling: str, *paths: Path, called: str = "PHIX") -> tuple[int, str]:
    return await dcmtk(
        "storescu", "-v", "-aet", calling, "-aec", called, "127.0.0.1", str(port), *map(str, paths)
    )


# -- test data -------------------------------------------------------------------------------------


@dataclass
class Study:
    uid: str
    paths: list[Path]
    sop_uids: list[str]
    series_uids: list[str]


def make_study(
    folder: Path,
    count: int,
    *,
    modality: str = "CT",
    patient_id: str = "MRN-0001",
    patient_name: str = "Chen^Wei=陈^伟",
    charset: str = "ISO_IR 192",
    body_part: str = "CHEST",
    series: int = 1,
    priority: str | None = None,
    accession: str = "A0001",
) -> Study:
    """A small study built from pydicom's CT_small.dcm / MR_small.dcm with fresh UIDs."""
    source = get_testdata_file("MR_small.dcm" if modality == "MR" else "CT_small.dcm", download=False)
    assert source is not None
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    paths, sops = [], []
    for n in range(count):
        ds = pydicom.dcmread(source)
        ds.SpecificCharacterSet = charset
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "M"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uids[n % series]
        ds.SeriesNumber = n % series + 1
        ds.InstanceNumber = n + 1
        ds.Modality = modality
        ds.BodyPartExamined = body_part
        ds.AccessionNumber = accession
        ds.StudyDate, ds.StudyTime = "20240315", "101530"
        ds.StudyDescription = "胸部CT检查"
        if "TimezoneOffsetFromUTC" in ds:
            del ds.TimezoneOffsetFromUTC  # the mapping then assumes China Standard Time
        if priority:
            ds.RequestedProcedurePriority = priority
        sop = generate_uid()
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        path = folder / f"{study_uid[-8:]}-{n:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        sops.append(sop)
    return Study(study_uid, paths, sops, series_uids)


class Kit:
    """The helpers above, handed to test modules as the ``kit`` fixture (tests/ is no package)."""

    eventually = staticmethod(eventually)
    dcmtk = staticmethod(dcmtk)
    storescu = staticmethod(storescu)
    make_study = staticmethod(make_study)
    write_routing = staticmethod(write_routing)
    free_port = staticmethod(free_port)
    dicom_settings = staticmethod(dicom_settings)
    OrthancSite = OrthancSite
    ROUTING = ROUTING
    REPO = REPO


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
