"""The mocks' own paths (not the vendors' APIs): which they are, and which need the run's token."""

from __future__ import annotations

OWN_PREFIXES = ("/__notifychaos/", "/_aws/")
"""The mocks' own endpoints: the control API and LocalStack's record of SNS sends."""

CANARY_PATH = "/__notifychaos/canary"
"""What the harness probes network faults with, on every mock."""

CANARY_COMMAND = "XCANARY"
"""The mail server mock's own SMTP command the harness probes network faults with (the canary
of a mock that does not speak HTTP)."""

_TOKEN_PREFIXES = ("/__notifychaos/", "/admin/")


def is_own(path: str) -> bool:
    """Whether `path` is one of the mocks' own endpoints: answered in the control API's style
    and not journaled as a vendor call."""
    return path.startswith(OWN_PREFIXES)


def needs_token(path: str) -> bool:
    """Whether a request for `path` needs the run's token: everything under `/__notifychaos/`
    and the ledger's `/admin/` (Locust's ticks schedule the reminders a run is scored on).

    Open on purpose: the canary (network-fault probes must look like any traffic through a
    link), and LocalStack's `/_aws/sns/sms-messages`, SNS's emulated send listing, part of the
    emulated API a notifier may read, as it may read LocalStack's."""
    return path != CANARY_PATH and path.startswith(_TOKEN_PREFIXES)
