"""ConsultSettings from PHIX_CONSULT__* environment variables."""

from __future__ import annotations

from datetime import timedelta

import pytest

from phix.consult.settings import load_consult_settings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHIX_CONSULT__DEADLINES__STAT", "PT20M")
    monkeypatch.setenv("PHIX_CONSULT__DEADLINES__ROUTINE", "PT12H")
    monkeypatch.setenv("PHIX_CONSULT__WEBHOOKS", '{"org-xtwzwsy": "https://hook.example/consult"}')
    monkeypatch.setenv("PHIX_CONSULT__ASSIGNMENT", "round-robin")
    monkeypatch.setenv("PHIX_CONSULT__SCHEDULER_ENABLED", "false")
    settings = load_consult_settings()
    assert settings.deadlines.for_priority("stat") == timedelta(minutes=20)
    assert settings.deadlines.for_priority("routine") == timedelta(hours=12)
    assert settings.deadlines.for_priority("urgent") == timedelta(hours=2)
    assert settings.webhooks == {"org-xtwzwsy": "https://hook.example/consult"}
    assert settings.assignment == "round-robin"
    assert settings.scheduler_enabled is False


def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHIX_CONSULT__ESCALATION", "shout")
    with pytest.raises(ValueError, match="escalation"):
        load_consult_settings()
