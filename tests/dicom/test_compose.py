"""docker-compose.yml validates (docker-compose 1.29, no engine needed) and is wired consistently
with dicom/routing.yaml and dicom/orthanc-site.json."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from phix.dicom.routing import parse_routing

REPO = Path(__file__).resolve().parents[2]
SECRETS = {
    "PHIX_DB_PASSWORD": "db-secret",
    "PHIX_SECRET_KEY": "key-secret",
    "PHIX_SITE_PASSWORD": "site-secret",
}

pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (apt-get install docker-compose): compose file not validated",
)


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PHIX_", "ORTHANC_"))}
    return subprocess.run(
        ["docker-compose", "-f", str(REPO / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=REPO,
        timeout=60,
    )


def test_config_validates() -> None:
    checked = compose("config", "-q", env=SECRETS)
    assert checked.returncode == 0, checked.stderr


def test_secrets_are_required() -> None:
    checked = compose("config", "-q", env={})
    assert checked.returncode != 0
    assert "set PHIX_" in checked.stderr


def test_services_are_wired_as_the_routing_file_expects(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = compose("config", env=SECRETS)
    assert rendered.returncode == 0, rendered.stderr
    services = yaml.safe_load(rendered.stdout)["services"]
    assert {"db", "api", "gateway", "ptsdyyy", "ptxyfsyy"} <= set(services)
    for name in services:
        assert "healthcheck" in services[name], f"{name} has no health check"
    gateway_env = services["gateway"]["environment"]
    assert services["api"]["environment"]["PHIX_DATABASE_URL"] == gateway_env["PHIX_DATABASE_URL"]
    for key, value in gateway_env.items():
        monkeypatch.setenv(key, str(value))
    config = parse_routing((REPO / "dicom" / "routing.yaml").read_text("utf-8"))
    rest, cstore = config.site("ptsdyyy"), config.site("ptxyfsyy")
    assert rest is not None and rest.url == "http://ptsdyyy:8042" and rest.password == "site-secret"
    assert cstore is not None and (cstore.host, cstore.port) == ("ptxyfsyy", 4242)
    assert services["ptxyfsyy"]["environment"]["ORTHANC_AET"] == cstore.ae_title
    assert services["ptxyfsyy"]["environment"]["ORTHANC_DICOM_PORT"] == "4242"
    # the instance store is shared: the gateway writes it, the API serves WADO-RS from it
    volume = [v for v in services["gateway"]["volumes"] if str(v).startswith("phix-data:/var/lib/phix")]
    assert volume and volume[0] in services["api"]["volumes"]
    assert gateway_env["PHIX_DICOM__STORAGE_DIR"].startswith("/var/lib/phix")
