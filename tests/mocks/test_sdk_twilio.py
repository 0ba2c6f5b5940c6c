"""The official Twilio SDK against the Twilio mock, unchanged but for its base URL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import parse_qsl

import pytest
import requests
from mockkit import Mocks, Receiver, Switch, fault_switch, marker, wait_until
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from harness.journal import SendRecorded, VendorCall, read_journal

TO, FROM = "+8613800000001", "+15005550006"


@pytest.fixture(autouse=True)
def _no_edge_nor_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # Either would rewrite the host name and so leave the mock (see the vendor notes).
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)


def sdk(mocks: Mocks, auth_token: str | None = None) -> Client:
    vendor = mocks.manifest.vendors["twilio"]
    client = Client(vendor.credentials["account_sid"],
                    auth_token or vendor.credentials["auth_token"])
    client.api.base_url = vendor.url
    return client


@pytest.fixture
def twilio(mocks: Mocks) -> Client:
    return sdk(mocks)


@pytest.fixture
def faults(mocks: Mocks) -> Iterator[Switch]:
    with fault_switch(mocks, "twilio") as switch:
        yield switch


def recorded(mocks: Mocks, body: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded) if s.body == body]


def callbacks(reports: Receiver, path: str, auth_token: str) -> list[tuple[str, str]]:
    """(MessageSid, MessageStatus) of each callback on `path`, each checked by the SDK's own
    validator."""
    validator, url = RequestValidator(auth_token), reports.url + path
    seen = []
    for request in reports.on(path):
        params = dict(parse_qsl(request.body.decode()))
        assert validator.validate(url, params, request.headers["X-Twilio-Signature"])
        seen.append((params["MessageSid"], params["MessageStatus"]))
    return seen


def test_the_sdk_sends_and_the_mock_records_it(twilio: Client, mocks: Mocks) -> None:
    body = f"sdk ref:{marker()}"
    message = twilio.messages.create(to=TO, from_=FROM, body=body)
    assert message.sid is not None and message.sid.startswith("SM")
    assert message.status == "queued"
    [send] = recorded(mocks, body)
    assert (send.message_id, send.to, send.client_ref) == (message.sid, TO, None)


def test_a_wrong_token_is_refused_the_twilio_way(mocks: Mocks) -> None:
    body = f"wrong token ref:{marker()}"
    with pytest.raises(TwilioRestException) as refused:
        sdk(mocks, auth_token="0" * 32).messages.create(to=TO, from_=FROM, body=body)
    assert (refused.value.status, refused.value.code) == (401, 20003)
    assert recorded(mocks, body) == []


def test_throttling_reaches_the_sdk_as_429_20429(twilio: Client, faults: Switch) -> None:
    faults(throttle=True)
    with pytest.raises(TwilioRestException) as throttled:
        twilio.messages.create(to=TO, from_=FROM, body="x")
    assert (throttled.value.status, throttled.value.code) == (429, 20429)


def test_status_callbacks_pass_the_sdks_own_validator(
        twilio: Client, mocks: Mocks, reports: Receiver) -> None:
    path = "/sdk-twilio/status"
    message = twilio.messages.create(to=TO, from_=FROM, body="x",
                                     status_callback=reports.url + path)
    reports.wait_for(path, 2)
    token = mocks.manifest.vendors["twilio"].credentials["auth_token"]
    assert callbacks(reports, path, token) == [(message.sid, "sent"), (message.sid, "delivered")]


@pytest.mark.parametrize(("status", "code"), [(503, 20503), (500, 20500)])
def test_an_outage_reaches_the_sdk_as_the_status_asked_for(
        twilio: Client, mocks: Mocks, faults: Switch, status: int, code: int) -> None:
    faults(outage=status)
    body = f"outage ref:{marker()}"
    with pytest.raises(TwilioRestException) as down:
        twilio.messages.create(to=TO, from_=FROM, body=body)
    assert (down.value.status, down.value.code) == (status, code)
    assert recorded(mocks, body) == []


def test_invalid_and_barred_numbers_are_refused_the_twilio_way(
        twilio: Client, faults: Switch) -> None:
    faults(invalid_numbers=[TO], barred_numbers=["+8613900000002"])
    with pytest.raises(TwilioRestException) as invalid:
        twilio.messages.create(to=TO, from_=FROM, body="x")
    with pytest.raises(TwilioRestException) as barred:
        twilio.messages.create(to="+8613900000002", from_=FROM, body="x")
    assert (invalid.value.status, invalid.value.code) == (400, 21211)
    assert (barred.value.status, barred.value.code) == (400, 21610)


def test_latency_is_seen_by_the_sdk(twilio: Client, faults: Switch) -> None:
    faults(latency=0.8)
    began = time.monotonic()
    message = twilio.messages.create(to=TO, from_=FROM, body="slow")
    assert time.monotonic() - began >= 0.8
    assert message.status == "queued"


def test_a_dropped_message_is_queued_but_never_arrives_nor_calls_back(
        twilio: Client, mocks: Mocks, faults: Switch, reports: Receiver) -> None:
    faults(drop=1.0)
    body = f"dropped ref:{marker()}"
    message = twilio.messages.create(to=TO, from_=FROM, body=body,
                                     status_callback=f"{reports.url}/sdk-twilio/dropped")
    assert message.status == "queued"
    [send] = recorded(mocks, body)
    assert (send.message_id, send.handset, send.inbox_at) == (message.sid, "dropped", None)
    faults()
    twilio.messages.create(to=TO, from_=FROM, body="x",
                           status_callback=f"{reports.url}/sdk-twilio/after-drop")
    reports.wait_for("/sdk-twilio/after-drop", 2)
    assert reports.on("/sdk-twilio/dropped") == []


def test_a_lost_response_is_a_connection_error_and_not_retried(
        twilio: Client, mocks: Mocks, faults: Switch) -> None:
    faults(response_lost=1.0)
    body = f"lost ref:{marker()}"
    # Not a TwilioException: requests' own error comes through, and over http:// the SDK
    # mounts no retrying adapter.
    with pytest.raises(requests.exceptions.ConnectionError):
        twilio.messages.create(to=TO, from_=FROM, body=body)
    assert len(recorded(mocks, body)) == 1


def test_callbacks_can_be_duplicated_and_each_copy_is_signed(
        twilio: Client, mocks: Mocks, faults: Switch, reports: Receiver) -> None:
    faults(dlr_duplicate=1.0)
    path = "/sdk-twilio/duplicated"
    message = twilio.messages.create(to=TO, from_=FROM, body="x",
                                     status_callback=reports.url + path)
    reports.wait_for(path, 4)
    token = mocks.manifest.vendors["twilio"].credentials["auth_token"]
    assert sorted(callbacks(reports, path, token)) == [
        (message.sid, "delivered"), (message.sid, "delivered"),
        (message.sid, "sent"), (message.sid, "sent")]


def test_callbacks_can_be_delayed(twilio: Client, faults: Switch, reports: Receiver) -> None:
    faults(dlr_delay=1.5)
    began = time.monotonic()
    twilio.messages.create(to=TO, from_=FROM, body="x",
                           status_callback=f"{reports.url}/sdk-twilio/delayed")
    reports.wait_for("/sdk-twilio/delayed", 2)
    assert time.monotonic() - began >= 1.5


def test_callbacks_can_be_lost(twilio: Client, faults: Switch, reports: Receiver) -> None:
    faults(dlr_loss=1.0)
    twilio.messages.create(to=TO, from_=FROM, body="x",
                           status_callback=f"{reports.url}/sdk-twilio/lost")
    faults()
    twilio.messages.create(to=TO, from_=FROM, body="x",
                           status_callback=f"{reports.url}/sdk-twilio/after-loss")
    wait_until(lambda: len(reports.on("/sdk-twilio/after-loss")) == 2, "the control's callbacks")
    assert reports.on("/sdk-twilio/lost") == []


def test_the_sdk_finds_past_messages_by_number_newest_first_page_by_page(
        twilio: Client, mocks: Mocks) -> None:
    # A number of its own, so that other tests' messages do not show up in the listing.
    to, tag = f"+86139{int(marker(), 16) % 10**8:08d}", marker()
    sent = [twilio.messages.create(to=to, from_=FROM, body=f"{tag} {n}").sid for n in range(3)]
    twilio.messages.create(to=TO, from_=FROM, body=f"{tag} elsewhere")
    listed = twilio.messages.list(to=to, page_size=2)
    assert [m.sid for m in listed] == sent[::-1]
    assert [m.body for m in listed] == [f"{tag} 2", f"{tag} 1", f"{tag} 0"]
    assert {m.status for m in listed} == {"delivered"}
    assert twilio.messages.list(to=to, date_sent_before=datetime(2000, 1, 1)) == []
    fetched = twilio.messages(sent[0]).fetch()
    assert (fetched.to, fetched.body, fetched.status) == (to, f"{tag} 0", "delivered")
    with pytest.raises(TwilioRestException) as missing:
        twilio.messages("SM" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)
    calls = read_journal(mocks.journal_dir).of(VendorCall)
    assert [c.outcome for c in calls if c.vendor == "twilio"][-3:] == ["read", "read", "rejected"]


def test_a_lookup_meets_the_same_outage_as_a_send(twilio: Client, faults: Switch) -> None:
    faults(outage=503)
    with pytest.raises(TwilioException, match="Unable to fetch page") as refused:
        twilio.messages.list(to=TO, limit=1)
    assert "HTTP 503" in str(refused.value) and "20503" in str(refused.value)
