"""``ConsultSettings``: deadlines, assignment, escalation and notification of teleconsultations.

Read from ``PHIX_CONSULT__*`` environment variables (``PHIX_CONSULT__DEADLINES__STAT=PT20M``,
``PHIX_CONSULT__WEBHOOKS='{"org-xtwzwsy": "https://..."}'``) by :func:`load_consult_settings`;
a test or an embedding application may instead put a ready ``ConsultSettings`` on
``app.state.consult_settings`` before start-up. Nothing reads the environment at import time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from phix.identity.systems import AFFILIATION_ROLE

RADIOLOGY = "http://snomed.info/sct|394914008"


class Deadlines(BaseModel):
    """Reporting deadline per ServiceRequest.priority, counted from receipt by the platform."""

    stat: timedelta = timedelta(minutes=30)
    asap: timedelta = timedelta(hours=1)
    urgent: timedelta = timedelta(hours=2)
    routine: timedelta = timedelta(hours=24)

    def for_priority(self, priority: str) -> timedelta:
        value: timedelta = getattr(self, priority, self.routine)
        return value


class ConsultSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHIX_CONSULT__", env_nested_delimiter="__", extra="ignore")

    deadlines: Deadlines = Field(default_factory=Deadlines)
    # least-loaded: fewest open consults, ties to the reader assigned longest ago;
    # round-robin: the reader assigned longest ago.
    assignment: Literal["least-loaded", "round-robin"] = "least-loaded"
    # A reader qualifies by one of these PractitionerRole.specialty codings ("system|code"); empty: any.
    reader_specialties: list[str] = Field(default_factory=lambda: [RADIOLOGY])
    # An OrganizationAffiliation is a contract when it carries one of these codes; empty: any.
    contract_codes: list[str] = Field(
        default_factory=lambda: [
            f"{AFFILIATION_ROLE}|teleconsultation",
            f"{AFFILIATION_ROLE}|teleradiology",
        ]
    )
    # What happens to an overdue consult: reassign (to another reader when one exists, else notify)
    # or notify only.
    escalation: Literal["reassign", "notify"] = "reassign"
    max_escalations: int = 2  # after this many, an overdue consult is only marked and notified
    escalation_grace: timedelta | None = None  # new deadline after a reassignment; None: the priority's
    reassign_on_reject: bool = True

    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = 30.0
    scheduler_batch: int = 100

    # Notifications: organization id -> webhook URL (requesting hospitals and reading sites).
    webhooks: dict[str, str] = Field(default_factory=dict)
    webhook_secret: str | None = None  # HMAC-SHA256 of the body in X-Phix-Signature when set
    notify_events: list[str] = Field(
        default_factory=lambda: ["assigned", "completed", "rejected", "overdue", "unassigned", "cancelled"]
    )
    delivery_timeout_seconds: float = 10.0
    delivery_max_attempts: int = 8
    delivery_backoff_seconds: float = 30.0  # doubled after each failed attempt
    delivery_backoff_max_seconds: float = 3600.0
    delivery_lease_seconds: float = 60.0


def load_consult_settings(**overrides: object) -> ConsultSettings:
    return ConsultSettings(**overrides)  # type: ignore[arg-type]
