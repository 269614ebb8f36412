"""Configuration: ``PHIX_*`` environment variables, one nested model per domain.

Nested values use ``__`` (``PHIX_FHIR__MAX_BODY_BYTES=...``). Nothing here reads the environment
at import time: call :func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class FhirSettings(BaseModel):
    base_path: str = "/fhir"
    max_body_bytes: int = 16 * 1024 * 1024
    default_count: int = 20
    max_count: int = 1000
    history_default_count: int = 100
    # Reject writes that reference a local resource that does not exist (409).
    enforce_referential_integrity: bool = True
    # Conditional delete: several matches are all deleted (up to the limit) unless this is False.
    conditional_delete_multiple: bool = True
    conditional_delete_max: int = 100


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    public_base_url: str | None = None  # e.g. https://hie.putian.example/fhir behind a proxy


class DatabaseSettings(BaseModel):
    pool_min: int = 2
    pool_max: int = 10
    # How long start-up waits for an external database that does not answer yet (PHIX_DB__CONNECT_WAIT).
    connect_wait: float = 60.0


class MpiSettings(BaseModel):
    # Overrides the match model's linking mode: "sync" links a Patient inside its write
    # transaction, "async" queues it for the linker worker (PHIX_MPI__LINKING=async).
    linking: Literal["sync", "async"] | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHIX_", env_nested_delimiter="__", extra="ignore")

    environment: str = "development"  # development | test | production
    # Unset: an embedded PostgreSQL under data_dir/pg. Set: an external server.
    database_url: str | None = None
    data_dir: Path = Path("var")
    log_level: str = "INFO"
    secret_key: str = "change-me"
    # Domains (search, mpi, dicom, consult) to leave out of the app, e.g. PHIX_DISABLED_DOMAINS='["mpi"]'.
    disabled_domains: list[str] = Field(default_factory=list)

    server: ServerSettings = Field(default_factory=ServerSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    fhir: FhirSettings = Field(default_factory=FhirSettings)
    mpi: MpiSettings = Field(default_factory=MpiSettings)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production" and self.secret_key in {"", "change-me"}:
            raise ValueError("PHIX_SECRET_KEY must be set to a real secret in production")
        return self


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
