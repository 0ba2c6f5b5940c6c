"""Every call to a vendor is journaled with its outcome and latency: the raw data of its SLA;
the harness's canary probes are not calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from mockkit import Mocks, Receiver, running_mocks, twilio_send, wait_until

from harness.canary import Endpoint, probe, tls_context
from harness.journal import VendorCall, read_journal

SEND = {"To": "+8613800000001", "From": "+15005550006", "Body": "x"}


@pytest.fixture
def fleet(tmp_path: Path, reports: Receiver) -> Iterator[Mocks]:
    with running_mocks(tmp_path, reports.url + "/unused") as served:
        yield served


def test_calls_are_journaled_as_accepted_rejected_refused_or_lost(
        client: httpx.Client, fleet: Mocks) -> None:
    twilio = fleet.manifest.vendors["twilio"]
    assert twilio_send(client, twilio, SEND).status_code == 201
    assert twilio_send(client, twilio, SEND, auth_token="wrong").status_code == 401
    client.put(twilio.control_url, json={"throttle": True, "latency": 0.2})
    assert twilio_send(client, twilio, SEND).status_code == 429
    client.put(twilio.control_url, json={"response_lost": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        twilio_send(client, twilio, SEND)

    def four_calls() -> list[VendorCall] | None:
        calls = read_journal(fleet.journal_dir).of(VendorCall)
        return calls if len(calls) == 4 else None

    calls = wait_until(four_calls, "four journaled calls")
    assert [(c.vendor, c.status, c.outcome) for c in calls] == [
        ("twilio", 201, "accepted"), ("twilio", 401, "rejected"), ("twilio", 429, "refused"),
        ("twilio", None, "lost")]
    assert calls[2].latency >= 0.2


def test_canary_probes_are_answered_and_never_journaled_as_calls(fleet: Mocks) -> None:
    for name in ("twilio", "vonage"):  # plain HTTP, and HTTPS with the run's test CA
        parts = urlsplit(fleet.manifest.vendors[name].url)
        assert parts.hostname and parts.port
        tls = tls_context(fleet.manifest.ca_bundle) if parts.scheme == "https" else None
        observed = probe(Endpoint(parts.hostname, parts.port, tls), ask=1000, upload=100)
        assert (observed.ended, observed.status) == ("answered", 200), observed
    assert read_journal(fleet.journal_dir).of(VendorCall) == []
