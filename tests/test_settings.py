"""Settings: PHIX_* environment variables, nested with "__", overrides, production guard."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from phix.app import create_app
from phix.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PHIX_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.environment == "development"
    assert settings.database_url is None  # embedded PostgreSQL
    assert settings.data_dir == Path("var")
    assert settings.fhir.base_path == "/fhir"
    assert settings.fhir.max_body_bytes == 16 * 1024 * 1024
    assert (settings.server.host, settings.server.port, settings.server.workers) == ("127.0.0.1", 8080, 1)


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHIX_DATABASE_URL", "postgresql://phix@db.internal/phix")
    monkeypatch.setenv("PHIX_DATA_DIR", "/srv/phix")
    monkeypatch.setenv("PHIX_FHIR__MAX_BODY_BYTES", "1048576")
    monkeypatch.setenv("PHIX_FHIR__HISTORY_DEFAULT_COUNT", "50")
    monkeypatch.setenv("PHIX_SERVER__PORT", "9090")
    monkeypatch.setenv("PHIX_SERVER__PUBLIC_BASE_URL", "https://hie.putian.example/fhir")
    monkeypatch.setenv("PHIX_DB__POOL_MAX", "4")
    settings = load_settings()
    assert settings.database_url == "postgresql://phix@db.internal/phix"
    assert settings.data_dir == Path("/srv/phix")
    assert settings.fhir.max_body_bytes == 1048576
    assert settings.fhir.history_default_count == 50
    assert settings.fhir.base_path == "/fhir"  # the rest of the nested model keeps its defaults
    assert settings.server.port == 9090
    assert settings.server.public_base_url == "https://hie.putian.example/fhir"
    assert settings.db.pool_max == 4


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PHIX_DATA_DIR", "/srv/phix")
    monkeypatch.setenv("PHIX_FHIR__MAX_BODY_BYTES", "10")
    settings = load_settings(data_dir=tmp_path, fhir={"max_body_bytes": 2048})
    assert settings.data_dir == tmp_path
    assert settings.fhir.max_body_bytes == 2048


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHIX_FHIR__MAX_BODY_BYTES", "lots")
    with pytest.raises(ValidationError, match="max_body_bytes"):
        load_settings()


def test_production_refuses_placeholder_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="PHIX_SECRET_KEY"):
        load_settings(environment="production")
    with pytest.raises(ValidationError, match="PHIX_SECRET_KEY"):
        load_settings(environment="production", secret_key="")
    monkeypatch.setenv("PHIX_ENVIRONMENT", "production")
    monkeypatch.setenv("PHIX_SECRET_KEY", "f3c1a9e0d2b84c5e")
    assert load_settings().secret_key == "f3c1a9e0d2b84c5e"
    assert load_settings(environment="development").secret_key == "f3c1a9e0d2b84c5e"


async def test_the_body_limit_from_the_environment_reaches_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHIX_FHIR__MAX_BODY_BYTES", "100")
    app = create_app(load_settings(database_url="postgresql://unused@127.0.0.1:1/unused"))
    # the limit is checked before any route (no database needed: the lifespan is not started)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post("/fhir/Patient", content=b"{" + b" " * 200 + b"}")
    assert response.status_code == 413
    assert response.json()["issue"][0]["diagnostics"] == "The request body exceeds 100 bytes"


def test_create_app_has_no_side_effects_on_settings() -> None:
    settings = load_settings(database_url="postgresql://unused@127.0.0.1:1/unused")
    app = create_app(settings)
    assert app.state.settings is settings
    assert not hasattr(app.state, "db")  # nothing connects before the lifespan starts
