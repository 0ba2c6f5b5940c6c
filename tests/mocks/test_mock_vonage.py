"""The Vonage mock against the official v4 SDK over HTTPS (trusting the run's test CA) and by hand:
auth, signed receipts, long texts, and every fault as the SDK sees it."""

from __future__ import annotations

import calendar
import json
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from mockkit import (
    CONTROL,
    REPORT_PATH,
    Mocks,
    Receiver,
    Switch,
    fault_switch,
    marker,
    running_mocks,
    vonage_sig,
    wait_until,
)
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import HttpRequestError, ServerError
from vonage_sms import SmsMessage
from vonage_sms.errors import SmsError

from harness.journal import SendRecorded, read_journal
from mocks.handsets import HandsetConfig

TO = "8613800000001"


@pytest.fixture(autouse=True)
def trust_the_test_ca(mocks: Mocks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", mocks.manifest.ca_bundle)


@pytest.fixture
def https(mocks: Mocks) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl.create_default_context(cafile=mocks.manifest.ca_bundle),
                      timeout=5) as client:
        yield client


@pytest.fixture
def faults(mocks: Mocks) -> Iterator[Switch]:
    with fault_switch(mocks, "vonage") as switch:
        yield switch


def sdk(mocks: Mocks, pool: int = 10, **auth: str) -> Vonage:
    vendor = mocks.manifest.vendors["vonage"]
    credentials = auth or {"api_key": vendor.credentials["api_key"],
                           "api_secret": vendor.credentials["api_secret"]}
    host = urlsplit(vendor.url).netloc
    return Vonage(Auth(**credentials), HttpClientOptions(rest_host=host, timeout=5,
                                                         pool_maxsize=pool))


def checker(mocks: Mocks, signature_secret: str | None = None) -> Auth:
    """The SDK's own webhook signature checker, with the account's signature secret (md5 HMAC)."""
    credentials = mocks.manifest.vendors["vonage"].credentials
    return Auth(api_key=credentials["api_key"], api_secret=credentials["api_secret"],
                signature_secret=signature_secret or credentials["signature_secret"],
                signature_method="md5")


def message(ref: str, to: str = TO, **extra: Any) -> SmsMessage:
    return SmsMessage(to=to, from_="BANK", text=f"reminder ref:{ref}", client_ref=ref, **extra)


def recorded(mocks: Mocks, ref: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded) if s.client_ref == ref]


def receipts(reports: Receiver, path: str, count: int) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in reports.wait_for(path, count)]


def test_the_sdk_sends_and_the_record_keeps_it(mocks: Mocks, https: httpx.Client) -> None:
    ref = marker()
    answer = sdk(mocks).sms.send(message(ref))
    [part] = answer.messages
    assert answer.message_count == "1"
    assert (part.status, part.to, part.client_ref) == ("0", TO, ref)
    assert re.fullmatch(r"[0-9A-F]{16}", part.message_id or "")
    assert (part.message_price, part.network) == ("0.03330000", "46000")
    [send] = recorded(mocks, ref)
    assert (send.vendor, send.message_id, send.to, send.body) == (
        "vonage", part.message_id, "+" + TO, f"reminder ref:{ref}")
    assert send.request["headers"]["Authorization"].startswith("Basic ")
    listing = https.get(mocks.manifest.vendors["vonage"].sends_url,
                        headers=CONTROL).json()["sends"]
    assert [s["message_id"] for s in listing if s["client_ref"] == ref] == [part.message_id]


def test_a_receipt_reaches_the_callback_as_vonage_json(mocks: Mocks, reports: Receiver) -> None:
    ref = marker()
    path = f"/vonage/{ref}"
    answer = sdk(mocks).sms.send(message(ref, callback=reports.url + path))
    [request] = reports.wait_for(path, 1)
    assert (request.method, request.headers["Content-Type"]) == ("POST", "application/json")
    receipt = json.loads(request.body)
    assert receipt.keys() == {"msisdn", "to", "network-code", "messageId", "price", "status",
                              "scts", "err-code", "message-timestamp", "client-ref", "api-key",
                              "timestamp", "nonce", "sig"}
    assert {k: receipt[k] for k in ("msisdn", "to", "messageId", "status", "err-code",
                                    "client-ref", "api-key")} == {
        "msisdn": TO, "to": "BANK", "messageId": answer.messages[0].message_id,
        "status": "delivered", "err-code": "0", "client-ref": ref,
        "api-key": mocks.manifest.vendors["vonage"].credentials["api_key"]}
    assert re.fullmatch(r"\d{10}", receipt["scts"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", receipt["message-timestamp"])


def test_a_receipt_is_signed_so_the_sdks_checker_verifies_it(
        mocks: Mocks, reports: Receiver) -> None:
    ref = marker()
    path = f"/vonage/{ref}"
    sdk(mocks).sms.send(message(ref, callback=reports.url + path))
    [receipt] = receipts(reports, path, 1)
    assert all(isinstance(value, str) for value in receipt.values())
    # check_signature pops `sig` from what it is given: hand it copies.
    assert checker(mocks).check_signature(dict(receipt))
    assert not checker(mocks).check_signature(receipt | {"status": "failed"})
    assert not checker(mocks, "x" * 32).check_signature(dict(receipt))
    stamped = calendar.timegm(time.strptime(receipt["message-timestamp"], "%Y-%m-%d %H:%M:%S"))
    assert int(receipt["timestamp"]) == stamped
    assert abs(stamped - time.time()) < 60


def test_without_a_callback_the_receipt_goes_to_the_configured_url(
        mocks: Mocks, reports: Receiver) -> None:
    ref = marker()
    sdk(mocks).sms.send(message(ref))

    def mine() -> list[dict[str, Any]]:
        items = [json.loads(r.body) for r in reports.on(REPORT_PATH)]
        return [i for i in items if isinstance(i, dict) and i.get("client-ref") == ref]

    [receipt] = wait_until(mine, "a Vonage receipt at the configured URL")
    assert receipt["status"] == "delivered"


def test_a_phone_left_off_lets_the_message_expire(
        tmp_path: Path, reports: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_mocks(tmp_path, reports.url + "/unused",
                       handsets=HandsetConfig(absent=1.0)) as off:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", off.manifest.ca_bundle)
        ref = marker()
        path = f"/vonage/{ref}"
        sdk(off).sms.send(message(ref, callback=reports.url + path))
        [receipt] = receipts(reports, path, 1)
    assert (receipt["status"], receipt["err-code"]) == ("expired", "2")
    assert [s.handset for s in recorded(off, ref)] == ["absent"]


def test_a_long_text_is_several_parts_one_send_and_a_receipt_per_part(
        mocks: Mocks, reports: Receiver) -> None:
    ref = marker()
    path = f"/vonage/{ref}"
    text = "您的贷款本期应还1000.00元，请于明日前还款。" * 6  # 150 UCS-2 units: 3 parts of 67
    answer = sdk(mocks).sms.send(SmsMessage(to=TO, from_="BANK", text=text, client_ref=ref,
                                            callback=reports.url + path))
    ids = [part.message_id for part in answer.messages]
    assert answer.message_count == "3" and len(set(ids)) == 3
    assert {part.status for part in answer.messages} == {"0"}
    [send] = recorded(mocks, ref)
    assert (send.message_id, send.body) == (ids[0], text)
    assert sorted(r["messageId"] for r in receipts(reports, path, 3)) == sorted(ids)


def test_key_and_secret_in_a_form_or_json_body_are_accepted(
        mocks: Mocks, https: httpx.Client) -> None:
    vendor = mocks.manifest.vendors["vonage"]
    ref = marker()
    params = {"api_key": vendor.credentials["api_key"], "to": TO, "from": "BANK",
              "text": "x", "api_secret": vendor.credentials["api_secret"], "client-ref": ref}
    url = f"{vendor.url}/sms/json"
    as_form = https.post(url, data=params).json()
    as_json = https.post(url, json=params).json()
    assert [a["messages"][0]["status"] for a in (as_form, as_json)] == ["0", "0"]
    assert len(recorded(mocks, ref)) == 2
    wrong = https.post(url, data=params | {"api_secret": "wrong"})
    assert wrong.status_code == 200
    assert wrong.json() == {"message-count": "1", "messages": [
        {"status": "4", "error-text": "Bad Credentials"}]}


@pytest.mark.parametrize("digest", ["md5", "sha1", "sha256", "sha512"])
def test_signed_requests_are_accepted_and_a_bad_signature_is_status_14(
        mocks: Mocks, https: httpx.Client, digest: str) -> None:
    vendor = mocks.manifest.vendors["vonage"]
    params = {"api_key": vendor.credentials["api_key"], "to": TO, "from": "BANK",
              "text": "signed & sealed = true", "timestamp": "1795890000"}
    params["sig"] = vonage_sig(vendor.credentials["signature_secret"], params, digest)
    url = f"{vendor.url}/sms/json"
    assert https.post(url, data=params).json()["messages"][0]["status"] == "0"
    forged = https.post(url, data=params | {"text": "forged"}).json()["messages"][0]
    assert forged == {"status": "14", "error-text": "Invalid Signature"}


def test_the_sdks_own_signing_is_refused_with_status_14(mocks: Mocks) -> None:
    # A v4 SDK quirk, not the mock's: it signs every SmsMessage field, unset ones as "None",
    # then requests leaves the None fields out of the form, so the API cannot verify the sig.
    vendor = mocks.manifest.vendors["vonage"]
    signing = sdk(mocks, api_key=vendor.credentials["api_key"],
                  signature_secret=vendor.credentials["signature_secret"])
    ref = marker()
    with pytest.raises(SmsError, match="error code 14"):
        signing.sms.send(message(ref))
    assert recorded(mocks, ref) == []


def test_a_wrong_secret_is_status_4_inside_http_200(mocks: Mocks) -> None:
    vendor = mocks.manifest.vendors["vonage"]
    ref = marker()
    with pytest.raises(SmsError, match="error code 4: Bad Credentials"):
        sdk(mocks, api_key=vendor.credentials["api_key"], api_secret="wrong").sms.send(
            message(ref))
    assert recorded(mocks, ref) == []


def test_throttling_is_status_1_inside_http_200(mocks: Mocks, faults: Switch) -> None:
    faults(throttle=True)
    ref = marker()
    with pytest.raises(SmsError, match="error code 1: Throughput Rate Exceeded"):
        sdk(mocks).sms.send(message(ref))
    assert recorded(mocks, ref) == []


@pytest.mark.parametrize(("status", "error"), [(500, ServerError), (503, HttpRequestError)])
def test_an_outage_is_the_http_status_the_sdk_maps(
        mocks: Mocks, faults: Switch, status: int, error: type[HttpRequestError]) -> None:
    faults(outage=status)
    ref = marker()
    with pytest.raises(error) as raised:
        sdk(mocks).sms.send(message(ref))
    # 503 is not a ServerError to the SDK: only 500 is.
    assert type(raised.value) is error
    assert raised.value.response.status_code == status
    assert recorded(mocks, ref) == []


def test_invalid_and_barred_numbers_are_statuses_6_and_7(mocks: Mocks, faults: Switch) -> None:
    faults(invalid_numbers=["+8613800000002"], barred_numbers=["+8613800000003"])
    with pytest.raises(SmsError, match="error code 6"):
        sdk(mocks).sms.send(message(marker(), to="8613800000002"))
    with pytest.raises(SmsError, match="error code 7"):
        sdk(mocks).sms.send(message(marker(), to="8613800000003"))
    with pytest.raises(SmsError, match="error code 3: Invalid to address"):
        sdk(mocks).sms.send(message(marker(), to="12"))


def test_a_lost_response_makes_the_sdk_send_again_until_its_pool_size(
        mocks: Mocks, faults: Switch) -> None:
    # Every answer lost: the SDK re-POSTs on RemoteDisconnected up to pool_maxsize times in
    # all (urllib3's own Retry does not retry a POST), then raises requests' ConnectionError.
    faults(response_lost=1.0)
    ref = marker()
    with pytest.raises(requests.ConnectionError, match="RemoteDisconnected"):
        sdk(mocks, pool=4).sms.send(message(ref))
    sends = recorded(mocks, ref)
    assert len(sends) == 4 and len({s.message_id for s in sends}) == 4
