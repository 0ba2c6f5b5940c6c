"""What the mock process serves and where: written by the mocks, read by the harness."""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mocks.bank import Changes, Population, Staging
from mocks.catalogue import MODULES
from mocks.handsets import HandsetConfig

TOKEN_HEADER = "X-Notifychaos-Token"
"""The header that carries the run's token to the mocks' control APIs (see mocks.access)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VendorConfig(_Model):
    """One vendor mock to serve: its wire format and what the vendor's console would hold."""

    kind: str
    sign_name: str = "示例银行"
    templates: dict[str, str] = {}
    report_url: str | None = None
    inbound_url: str | None = None  # where replies (STOP) are forwarded, as the vendor does

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in MODULES:
            raise ValueError(f"unknown vendor kind {value!r}; known: {', '.join(MODULES)}")
        return value


Channel = Literal["sms", "push", "email"]
"""How a message reaches a borrower: a text through an SMS vendor, a push notification to the
bank's app, or an e-mail."""
CHANNELS: tuple[Channel, ...] = ("sms", "push", "email")

ChannelKind = Literal["push", "email"]
"""The channels beside SMS a run may serve: the push service (FCM HTTP v1) and the mail server
(SMTP)."""


class MocksConfig(_Model):
    """Everything the mock process needs to start; `token` is the run's secret for the
    control APIs (fresh per config unless given: the harness makes one per run)."""

    seed: int = 0
    window: float = 20.0
    lead: float = 5.0
    population: Population = Population()
    changes: Changes = Changes()
    journal_dir: str
    vendors: dict[str, VendorConfig]
    handsets: HandsetConfig = HandsetConfig()
    channels: list[ChannelKind] = []
    app: bool = False
    """Whether the ledger serves the borrower app's view (the `app` link's upstream)."""
    staging: Staging | None = None
    """The bank's own reminder calendar (`reminders.month.stages`); its epoch comes later,
    by the ledger's PUT /admin/clock."""
    run_dir: str = ""
    """Where a channel may write files the target reads (the push service account)."""
    token: str = Field(default_factory=lambda: secrets.token_urlsafe(32), min_length=16)


class VendorEndpoint(_Model):
    """Where a vendor mock listens, the credentials it accepts, and its control API."""

    kind: str
    url: str
    credentials: dict[str, str]
    control_url: str
    sends_url: str


class ChannelEndpoint(_Model):
    """Where a channel mock listens (`url`: `http://...` for push, `smtp://host:port` for
    mail), the credentials it accepts, its control API, and the further placeholder values it
    gives the target (`values`, by name without the channel: `project`, `credentials_file`)."""

    kind: ChannelKind
    url: str
    credentials: dict[str, str]
    control_url: str
    values: dict[str, str] = {}


class Manifest(_Model):
    """The served topology: one base URL per mock, each vendor's credentials, the PEM file
    of the test CA that signed the certificate of every HTTPS vendor mock, and the token the
    control APIs want (in TOKEN_HEADER). It holds secrets: it is written owner-only."""

    pid: int
    ledger_url: str
    ledger_control_url: str
    alerts_url: str
    ca_bundle: str
    vendors: dict[str, VendorEndpoint]
    channels: dict[ChannelKind, ChannelEndpoint] = {}
    token: str
