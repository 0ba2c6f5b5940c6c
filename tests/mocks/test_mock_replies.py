"""Vonage and Tencent forward a borrower's STOP to the account's inbound URL, each in its own
webhook format; Vonage signs its webhook so that the official SDK's checker verifies it."""

from __future__ import annotations

import calendar
import json
import ssl
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from mockkit import (
    REPORT_PATH,
    SIGN_NAME,
    Mocks,
    Receiver,
    running_mocks,
    tencent_tc3_headers,
    wait_until,
)
from vonage import Auth

from harness.journal import BorrowerOptedOut, read_journal
from mocks.handsets import HandsetConfig

INBOUND = "/replies/inbound"


@pytest.fixture(scope="module")
def replying(tmp_path_factory: pytest.TempPathFactory, reports: Receiver) -> Iterator[Mocks]:
    """The fleet with every borrower replying STOP, replies forwarded to `reports`."""
    with running_mocks(tmp_path_factory.mktemp("replies"), reports.url + REPORT_PATH,
                       inbound_url=reports.url + INBOUND,
                       handsets=HandsetConfig(stop=1.0)) as served:
        yield served


def reply_from(reports: Receiver, key: str, number: str) -> tuple[Any, dict[str, Any]]:
    """The one forwarded reply whose `key` names `number`: the request and its JSON body."""
    def found() -> list[tuple[Any, dict[str, Any]]]:
        bodies = [(r, json.loads(r.body)) for r in reports.on(INBOUND)]
        return [(r, body) for r, body in bodies if body.get(key) == number]

    [reply] = wait_until(found, f"the reply from {number}")
    return reply


def opted_out(mocks: Mocks) -> list[tuple[str, str]]:
    return [(o.phone, o.vendor) for o in read_journal(mocks.journal_dir).of(BorrowerOptedOut)]


def test_a_vonage_stop_reaches_the_inbound_url_signed_for_the_sdks_checker(
        replying: Mocks, reports: Receiver) -> None:
    vendor = replying.manifest.vendors["vonage"]
    credentials = vendor.credentials
    borrower, sender = "8613800000101", "15005550006"
    with httpx.Client(verify=ssl.create_default_context(cafile=replying.manifest.ca_bundle),
                      timeout=5) as https:
        sent = https.post(f"{vendor.url}/sms/json", data={
            "api_key": credentials["api_key"], "api_secret": credentials["api_secret"],
            "to": borrower, "from": sender, "text": "reminder"}).json()
    assert sent["messages"][0]["status"] == "0"

    request, reply = reply_from(reports, "msisdn", borrower)
    assert (request.method, request.headers["Content-Type"]) == ("POST", "application/json")
    assert reply.keys() == {"msisdn", "to", "messageId", "text", "type", "keyword",
                            "message-timestamp", "api-key", "timestamp", "nonce", "sig"}
    assert {k: reply[k] for k in ("msisdn", "to", "text", "type", "keyword", "api-key")} == {
        "msisdn": borrower, "to": sender, "text": "STOP", "type": "text", "keyword": "STOP",
        "api-key": credentials["api_key"]}
    assert int(reply["timestamp"]) == calendar.timegm(
        time.strptime(reply["message-timestamp"], "%Y-%m-%d %H:%M:%S"))
    checker = Auth(api_key=credentials["api_key"], api_secret=credentials["api_secret"],
                   signature_secret=credentials["signature_secret"], signature_method="md5")
    # check_signature pops `sig` from what it is given: hand it copies.
    assert checker.check_signature(dict(reply))
    assert not checker.check_signature(reply | {"msisdn": "8613800000999"})
    assert ("+" + borrower, "vonage") in opted_out(replying)


def test_a_tencent_stop_reaches_the_inbound_url_as_a_reply_callback(
        replying: Mocks, reports: Receiver, client: httpx.Client) -> None:
    vendor = replying.manifest.vendors["tencent"]
    credentials = vendor.credentials
    body = json.dumps({"PhoneNumberSet": ["+8613800000201"],
                       "SmsSdkAppId": credentials["sdk_app_id"], "SignName": SIGN_NAME,
                       "TemplateId": "1234567",
                       "TemplateParamSet": ["王伟", "1.00", "R1"]}).encode()
    headers = tencent_tc3_headers(credentials["secret_id"], credentials["secret_key"],
                                  urlsplit(vendor.url).netloc, body)
    before = int(time.time())
    sent = client.post(vendor.url + "/", content=body, headers=headers).json()
    assert sent["Response"]["SendStatusSet"][0]["Code"] == "Ok"

    request, reply = reply_from(reports, "mobile", "13800000201")
    assert (request.method, request.headers["Content-Type"]) == ("POST", "application/json")
    assert reply.keys() == {"extend", "mobile", "nationcode", "sign", "text", "time"}
    assert {k: reply[k] for k in ("extend", "mobile", "nationcode", "sign", "text")} == {
        "extend": "", "mobile": "13800000201", "nationcode": "86", "sign": SIGN_NAME,
        "text": "退订"}
    assert isinstance(reply["time"], int) and before <= reply["time"] <= time.time()
    assert ("+8613800000201", "tencent") in opted_out(replying)
