"""The run's token: every control API of every mock (fault switches, the record of sends, the
ledger's admin) refuses a call without it or with a wrong one, and takes the run's own calls;
what the notifier under test uses stays open without it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
from mockkit import CONTROL, TOKEN, Mocks, marker, twilio_send

from harness.errors import FaultInjectionError
from harness.journal import MockFaultsChanged, read_journal
from harness.scenario import Step
from harness.timeline import ControlInjector
from mocks.manifest import TOKEN_HEADER, Manifest
from mocks.paths import CANARY_PATH

Call = tuple[str, str]  # (method, URL)


def protected_calls(manifest: Manifest) -> list[Call]:
    """Every control call of the fleet: faults (read, switch, clear) of the ledger and of each
    vendor, each vendor's record of sends, and the ledger's admin."""
    calls: list[Call] = [(method, manifest.ledger_control_url)
                         for method in ("GET", "PUT", "DELETE")]
    calls.append(("POST", f"{manifest.ledger_url}/admin/ticks"))
    # The alert sink has no read side; its control namespace is guarded all the same.
    calls.append(("GET", manifest.alerts_url.removesuffix("/alerts") + "/__notifychaos/x"))
    for vendor in manifest.vendors.values():
        calls += [(method, vendor.control_url) for method in ("GET", "PUT", "DELETE")]
        calls.append(("GET", vendor.sends_url))
        calls.append(("GET", vendor.url + "/__notifychaos/no-such-thing"))
    return calls


@pytest.fixture(scope="module")
def anyone(mocks: Mocks) -> Iterator[httpx.Client]:
    """A local process that trusts the test CA but has no token."""
    tls = ssl.create_default_context(cafile=mocks.manifest.ca_bundle)
    with httpx.Client(verify=tls, timeout=5) as client:
        yield client


def answers(client: httpx.Client, calls: list[Call], headers: dict[str, str]
            ) -> dict[Call, tuple[int, object]]:
    """Each call's status and JSON body ({} is the body of every switch and tick)."""
    results: dict[Call, tuple[int, object]] = {}
    for method, url in calls:
        response = client.request(method, url, headers=headers,
                                  content=b"{}" if method in ("PUT", "POST") else None)
        results[(method, url)] = (response.status_code, response.json())
    return results


@pytest.mark.parametrize("headers", [
    {}, {TOKEN_HEADER: "not-the-token"}, {TOKEN_HEADER: ""}, {TOKEN_HEADER: TOKEN[:-1]},
    {TOKEN_HEADER: TOKEN + "x"}, {TOKEN_HEADER: TOKEN.upper()},
    {"Authorization": f"Bearer {TOKEN}"},
], ids=["none", "wrong", "empty", "short", "long", "case", "bearer"])
def test_a_control_call_without_the_runs_token_is_refused_everywhere(
        mocks: Mocks, anyone: httpx.Client, headers: dict[str, str]) -> None:
    results = answers(anyone, protected_calls(mocks.manifest), headers)

    assert {call: status for call, (status, _) in results.items()} == {
        call: 401 for call in results}
    assert all(isinstance(body, dict) and TOKEN_HEADER in body["error"]
               for _, body in results.values())


def test_a_token_that_is_not_ascii_is_refused_not_a_server_error(
        mocks: Mocks, anyone: httpx.Client) -> None:
    response = anyone.get(mocks.manifest.ledger_control_url,
                          headers=[(TOKEN_HEADER.encode(), "é".encode())])

    assert response.status_code == 401
    assert "wrong token" in response.json()["error"]


def test_the_runs_own_calls_pass(mocks: Mocks, anyone: httpx.Client) -> None:
    results = answers(anyone, [call for call in protected_calls(mocks.manifest)
                               if not call[1].endswith(("/no-such-thing", "/x"))], CONTROL)

    assert {call: status for call, (status, _) in results.items()} == {
        call: 201 if call[1].endswith("/admin/ticks") else 200 for call in results}
    # And an unknown control path, once the token is right, is simply not there.
    twilio = mocks.manifest.vendors["twilio"]
    assert anyone.get(twilio.url + "/__notifychaos/no-such-thing",
                      headers=CONTROL).status_code == 404


def test_a_refused_switch_changes_nothing(mocks: Mocks, anyone: httpx.Client) -> None:
    twilio = mocks.manifest.vendors["twilio"]
    before = len(read_journal(mocks.journal_dir).of(MockFaultsChanged))

    refused = anyone.put(twilio.control_url, json={"outage": 503},
                         headers={TOKEN_HEADER: "guess"})

    assert refused.status_code == 401
    assert anyone.get(twilio.control_url, headers=CONTROL).json()["outage"] is None
    assert len(read_journal(mocks.journal_dir).of(MockFaultsChanged)) == before


def test_what_the_notifier_uses_needs_no_token(mocks: Mocks, anyone: httpx.Client) -> None:
    manifest = mocks.manifest
    twilio = manifest.vendors["twilio"]
    form = {"To": "+8613912345678", "From": twilio.credentials["from"], "Body": marker()}

    assert twilio_send(anyone, twilio, form).status_code == 201
    assert anyone.get(f"{manifest.ledger_url}/v1/reminders/changes").status_code == 200
    assert anyone.get(f"{manifest.ledger_url}/healthz").status_code == 200
    assert anyone.post(manifest.alerts_url, json={"alert": "twilio down"}).status_code == 202
    # The canary must pass through a link like any traffic: no token.
    for url in (manifest.ledger_url, *(v.url for v in manifest.vendors.values())):
        assert anyone.get(url + CANARY_PATH, params={"bytes": 3}).content == b"..."


def step(link: str, fault: str, **params: int) -> Step:
    return Step.model_validate({"at": "0s", "for": "5s", "fault": fault, "link": link,
                                "params": params})


def test_the_harness_switches_faults_with_the_runs_token(
        mocks: Mocks, anyone: httpx.Client) -> None:
    manifest = mocks.manifest
    urls = {"vendors.twilio": manifest.vendors["twilio"].control_url}
    outage = step("vendors.twilio", "vendor.outage", status=502)
    injector = ControlInjector(urls, manifest.ca_bundle, manifest.token)

    injector.apply(0, outage)
    try:
        assert anyone.get(urls["vendors.twilio"], headers=CONTROL).json()["outage"] == 502
    finally:
        injector.revert(0, outage)
    assert anyone.get(urls["vendors.twilio"], headers=CONTROL).json()["outage"] is None

    with pytest.raises(FaultInjectionError, match="401"):
        ControlInjector(urls, manifest.ca_bundle, "not-the-token").apply(0, outage)
