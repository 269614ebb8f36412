"""Gateway process settings: ``PHIX_DICOM__*`` environment variables.

The network topology (sending institutions and their AE titles, reading sites, routing rules) is
not here but in the YAML file named by ``rules_file`` (see :mod:`phix.dicom.routing`).
Nothing reads the environment at import time: call :func:`load_dicom_settings`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def valid_ae_title(value: str) -> str:
    """PS3.5 AE VR: 1-16 characters of the default repertoire, no backslash or control characters."""
    title = value.strip()
    if not 0 < len(title) <= 16 or not title.isascii() or "\\" in title or not title.isprintable():
        raise ValueError(f"invalid AE title {value!r}: 1-16 printable ASCII characters, no backslash")
    return title


class DicomSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHIX_DICOM__", extra="ignore")

    ae_title: str = "PHIX"
    host: str = "127.0.0.1"  # the DICOM listener's bind address; 0.0.0.0 in containers
    port: int = Field(11112, ge=0, le=65535)  # 0: any free port (tests)
    rules_file: Path = Path("dicom/routing.yaml")
    storage_dir: Path | None = None  # default: <PHIX_DATA_DIR>/dicom
    # Base URL of our DICOMweb service as readers see it (the Endpoint resource's address).
    dicomweb_base_url: str | None = None
    # AE titles allowed to associate for C-ECHO only (container health checks, monitoring).
    monitor_ae_titles: list[str] = Field(default_factory=lambda: ["PHIX_MONITOR"])

    # A study whose association did not end with a release is complete after this quiet time.
    stable_seconds: float = Field(30.0, gt=0)
    # Routing queue.
    route_workers: int = Field(2, ge=1, le=32)
    upload_concurrency: int = Field(4, ge=1, le=32)
    retry_base_seconds: float = Field(5.0, gt=0)
    retry_max_seconds: float = Field(600.0, gt=0)
    max_attempts: int = Field(0, ge=0)  # 0: retry for ever (the job stays visible as pending)
    poll_seconds: float = Field(2.0, gt=0)  # fallback when no NOTIFY arrives
    delivery_timeout: float = Field(30.0, gt=0)  # per request / per DIMSE message to a site

    # Receive journal (phix.dicom.journal): one append + fdatasync per instance. Off: one file
    # per instance with fsync + rename + directory fsync (slower on a busy disk).
    journal: bool = True
    journal_segment_bytes: int = Field(64 << 20, ge=1 << 20)

    # Receive path tuning (docs/dicom-conformance.md, "Performance"; bench/dicom.py measures it).
    index_processes: int = Field(1, ge=0, le=8)  # header parsing off the receiver's GIL; 0 = in-thread
    # Index in the gaps: wait while associations stream, at most this long / this many arrivals.
    index_defer_seconds: float = Field(5.0, ge=0)
    index_defer_backlog: int = Field(2000, ge=1)
    dul_loop_delay: float = Field(0.0001, ge=0, le=0.01)  # pynetdicom's DUL poll (default 0.001)
    assoc_loop_delay: float = Field(0.0001, ge=0, le=0.01)  # pynetdicom's association poll (0.001)
    tcp_nodelay: bool = True
    fast_store_response: bool = True  # C-STORE-RSP encoded without pydicom (phix.dicom.fastpath)
    max_associations: int = Field(32, ge=1)
    network_timeout: float = Field(60.0, gt=0)

    # Key for de-identification pseudonyms (UIDs, patient ids); defaults to PHIX_SECRET_KEY.
    deidentify_secret: str | None = None

    @field_validator("ae_title")
    @classmethod
    def _ae_title(cls, value: str) -> str:
        return valid_ae_title(value)

    @field_validator("monitor_ae_titles")
    @classmethod
    def _monitor_titles(cls, value: list[str]) -> list[str]:
        return [valid_ae_title(v) for v in value]

    def storage_root(self, data_dir: Path) -> Path:
        return (self.storage_dir or Path(data_dir) / "dicom").resolve()


def load_dicom_settings(**overrides: object) -> DicomSettings:
    return DicomSettings(**overrides)  # type: ignore[arg-type]
