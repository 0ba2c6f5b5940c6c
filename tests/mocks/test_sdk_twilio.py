"""The official Twilio SDK against the Twilio mock, unchanged but for its base URL."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl

import httpx
import pytest
from mockkit import Mocks, Receiver
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from harness.journal import SendRecorded, read_journal

TO, FROM = "+8613800000001", "+15005550006"


@pytest.fixture
def twilio(mocks: Mocks, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    # Either would rewrite the host name and so leave the mock (see the vendor notes).
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    vendor = mocks.manifest.vendors["twilio"]
    client = Client(vendor.credentials["account_sid"], vendor.credentials["auth_token"])
    client.api.base_url = vendor.url
    yield client


def test_the_sdk_sends_and_the_mock_records_it(twilio: Client, mocks: Mocks) -> None:
    message = twilio.messages.create(to=TO, from_=FROM, body="sdk: ref:SDKTWIL1")
    assert message.sid is not None and message.sid.startswith("SM")
    assert message.status == "queued"
    recorded = [s for s in read_journal(mocks.journal_dir).of(SendRecorded)
                if s.message_id == message.sid]
    assert [(s.to, s.body) for s in recorded] == [(TO, "sdk: ref:SDKTWIL1")]


def test_a_wrong_token_is_refused_the_twilio_way(mocks: Mocks) -> None:
    vendor = mocks.manifest.vendors["twilio"]
    client = Client(vendor.credentials["account_sid"], "0" * 32)
    client.api.base_url = vendor.url
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to=TO, from_=FROM, body="x")
    assert (refused.value.status, refused.value.code) == (401, 20003)


def test_throttling_reaches_the_sdk_as_429_20429(twilio: Client, mocks: Mocks) -> None:
    control = mocks.manifest.vendors["twilio"].control_url
    httpx.put(control, json={"throttle": True}, timeout=5).raise_for_status()
    try:
        with pytest.raises(TwilioRestException) as throttled:
            twilio.messages.create(to=TO, from_=FROM, body="x")
    finally:
        httpx.delete(control, timeout=5)
    assert (throttled.value.status, throttled.value.code) == (429, 20429)


def test_status_callbacks_pass_the_sdks_own_validator(
        twilio: Client, mocks: Mocks, reports: Receiver) -> None:
    callback = f"{reports.url}/sdk-twilio/status"
    message = twilio.messages.create(to=TO, from_=FROM, body="x", status_callback=callback)
    received = reports.wait_for("/sdk-twilio/status", 2)
    validator = RequestValidator(mocks.manifest.vendors["twilio"].credentials["auth_token"])
    statuses = []
    for request in received:
        params = dict(parse_qsl(request.body.decode()))
        assert params["MessageSid"] == message.sid
        assert validator.validate(callback, params, request.headers["X-Twilio-Signature"])
        statuses.append(params["MessageStatus"])
    assert statuses == ["sent", "delivered"]
