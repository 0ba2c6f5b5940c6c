"""What the mock process serves and where: written by the mocks, read by the harness."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VendorConfig(_Model):
    """One vendor mock to serve."""

    kind: str
    sign_name: str = "示例银行"
    templates: dict[str, str] = {}
    report_url: str | None = None


class MocksConfig(_Model):
    """Everything the mock process needs to start."""

    seed: int = 0
    window: float = 20.0
    journal_dir: str
    vendors: dict[str, VendorConfig]


class VendorEndpoint(_Model):
    """Where a vendor mock listens and the credentials it accepts."""

    kind: str
    url: str
    credentials: dict[str, str]


class Manifest(_Model):
    """The served topology: one base URL per mock, plus each vendor's credentials."""

    pid: int
    ledger_url: str
    alerts_url: str
    vendors: dict[str, VendorEndpoint]
