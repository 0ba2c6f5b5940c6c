"""The official Vonage SDK against the Vonage mock over HTTPS, trusting the run's test CA."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from mockkit import REPORT_PATH, Mocks, Receiver, marker, wait_until
from vonage import Auth, HttpClientOptions, Vonage
from vonage_sms import SmsMessage
from vonage_sms.errors import SmsError

from harness.journal import SendRecorded, read_journal


@pytest.fixture
def trust_the_test_ca(mocks: Mocks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", mocks.manifest.ca_bundle)


def trusting(mocks: Mocks) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=mocks.manifest.ca_bundle)


def sdk(mocks: Mocks, **auth: str) -> Vonage:
    vendor = mocks.manifest.vendors["vonage"]
    credentials = auth or {"api_key": vendor.credentials["api_key"],
                           "api_secret": vendor.credentials["api_secret"]}
    host = urlsplit(vendor.url).netloc
    return Vonage(Auth(**credentials), HttpClientOptions(rest_host=host, api_host=host,
                                                         timeout=5, max_retries=0))


def message(ref: str) -> SmsMessage:
    return SmsMessage(to="8613800000001", from_="BANK", text=f"reminder ref:{ref}",
                      client_ref=ref)


@pytest.mark.usefixtures("trust_the_test_ca")
def test_the_sdk_sends_over_https_and_a_receipt_follows(mocks: Mocks, reports: Receiver) -> None:
    ref = marker()
    answer = sdk(mocks).sms.send(message(ref))
    assert answer.messages[0].status == "0" and answer.messages[0].client_ref == ref
    [recorded] = [s for s in read_journal(mocks.journal_dir).of(SendRecorded)
                  if s.client_ref == ref]
    assert (recorded.vendor, recorded.to) == ("vonage", "+8613800000001")

    def receipt() -> list[dict[str, Any]]:
        items = [json.loads(r.body) for r in reports.on(REPORT_PATH)]
        return [i for i in items if isinstance(i, dict) and i.get("client-ref") == ref]

    [item] = wait_until(receipt, "a Vonage delivery receipt")
    assert (item["messageId"], item["status"]) == (answer.messages[0].message_id, "delivered")


def test_signed_requests_are_accepted_and_a_bad_signature_is_status_14(mocks: Mocks) -> None:
    # Signed by hand: the v4 SDK signs its None-valued fields as "None" and then leaves them
    # out of the form, so its signed requests fail against the real API too.
    vendor = mocks.manifest.vendors["vonage"]
    params = {"api_key": vendor.credentials["api_key"], "to": "8613800000001",
              "from": "BANK", "text": "signed & sealed", "timestamp": "1795890000"}
    params["sig"] = hmac.new(vendor.credentials["signature_secret"].encode(), "".join(
        f"&{k}={params[k].replace('&', '_').replace('=', '_')}" for k in sorted(params)
    ).encode(), hashlib.md5).hexdigest()
    url = f"{vendor.url}/sms/json"
    with httpx.Client(verify=trusting(mocks), timeout=5) as client:
        assert client.post(url, data=params).json()["messages"][0]["status"] == "0"
        forged = client.post(url, data=params | {"text": "forged"}).json()
    assert forged["messages"][0]["status"] == "14"


@pytest.mark.usefixtures("trust_the_test_ca")
def test_a_wrong_secret_is_status_4_inside_http_200(mocks: Mocks) -> None:
    vendor = mocks.manifest.vendors["vonage"]
    with pytest.raises(SmsError, match="error code 4"):
        sdk(mocks, api_key=vendor.credentials["api_key"], api_secret="wrong").sms.send(
            message(marker()))


@pytest.mark.usefixtures("trust_the_test_ca")
def test_throttling_is_status_1_inside_http_200(mocks: Mocks) -> None:
    control = mocks.manifest.vendors["vonage"].control_url
    with httpx.Client(verify=trusting(mocks), timeout=5) as client:
        client.put(control, json={"throttle": True}).raise_for_status()
        try:
            with pytest.raises(SmsError, match="error code 1"):
                sdk(mocks).sms.send(message(marker()))
        finally:
            client.delete(control)
