"""Vonage and Tencent forward a borrower's STOP to the account's inbound URL, each in its own
webhook format; Vonage signs its webhook so that the official SDK's checker verifies it.

The shared `running_mocks` gives only Twilio and Alibaba an inbound URL, so this module starts a
mock process of its own, with these two vendors and every borrower replying STOP."""

from __future__ import annotations

import calendar
import json
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from mockkit import ROOT, SIGN_NAME, WINDOW, Mocks, Receiver, tencent_tc3_headers, wait_until
from vonage import Auth

from harness.journal import BorrowerOptedOut, read_journal
from mocks.handsets import HandsetConfig
from mocks.manifest import Manifest, MocksConfig, VendorConfig

VONAGE_INBOUND, TENCENT_INBOUND = "/vonage/inbound", "/tencent/inbound"
TEMPLATE_ID = "1234567"


@pytest.fixture(scope="module")
def replying(tmp_path_factory: pytest.TempPathFactory, reports: Receiver) -> Iterator[Mocks]:
    """A mock process serving Vonage and Tencent, both forwarding replies to `reports`."""
    workdir = tmp_path_factory.mktemp("replies")
    config = MocksConfig(
        seed=7, window=WINDOW, journal_dir=str(workdir / "journal"),
        handsets=HandsetConfig(stop=1.0),
        vendors={
            "vonage": VendorConfig(kind="vonage", inbound_url=reports.url + VONAGE_INBOUND),
            "tencent": VendorConfig(kind="tencent", sign_name=SIGN_NAME,
                                    templates={TEMPLATE_ID: "还款{1}元"},
                                    inbound_url=reports.url + TENCENT_INBOUND),
        })
    config_path, manifest_path = workdir / "mocks.json", workdir / "manifest.json"
    config_path.write_text(config.model_dump_json(), encoding="utf-8")
    log = workdir / "mocks.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mocks", str(config_path), str(manifest_path)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: manifest_path.exists() or process.poll() is not None,
                   "the mock process's manifest", timeout=15)
        assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        manifest = Manifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
        yield Mocks(manifest, workdir / "journal", process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


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

    [request] = reports.wait_for(VONAGE_INBOUND, 1)
    assert (request.method, request.headers["Content-Type"]) == ("POST", "application/json")
    reply = json.loads(request.body)
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
    body = json.dumps({"PhoneNumberSet": ["+8613800000201"], "SmsSdkAppId":
                       credentials["sdk_app_id"], "SignName": SIGN_NAME,
                       "TemplateId": TEMPLATE_ID, "TemplateParamSet": ["1.00"]}).encode()
    headers = tencent_tc3_headers(credentials["secret_id"], credentials["secret_key"],
                                  urlsplit(vendor.url).netloc, body)
    before = int(time.time())
    sent = client.post(vendor.url + "/", content=body, headers=headers).json()
    assert sent["Response"]["SendStatusSet"][0]["Code"] == "Ok"

    [request] = reports.wait_for(TENCENT_INBOUND, 1)
    assert (request.method, request.headers["Content-Type"]) == ("POST", "application/json")
    reply = json.loads(request.body)
    assert reply.keys() == {"extend", "mobile", "nationcode", "sign", "text", "time"}
    assert {k: reply[k] for k in ("extend", "mobile", "nationcode", "sign", "text")} == {
        "extend": "", "mobile": "13800000201", "nationcode": "86", "sign": SIGN_NAME,
        "text": "退订"}
    assert isinstance(reply["time"], int) and before <= reply["time"] <= time.time()
    assert ("+8613800000201", "tencent") in opted_out(replying)
