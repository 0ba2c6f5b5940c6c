"""Handsets: phones that are off, the spam folder, and borrowers who reply STOP."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from mockkit import (
    Receiver,
    aliyun_send,
    running_mocks,
    template_param,
    twilio_send,
    twilio_signature,
)

from harness.journal import BorrowerOptedOut, SendRecorded, read_journal
from mocks.handsets import HandsetConfig, SpamRules

PHONE = "+8613800000001"


def test_a_phone_that_is_off_never_receives_and_the_report_says_so(
        tmp_path: Path, reports: Receiver, client: httpx.Client) -> None:
    with running_mocks(tmp_path, f"{reports.url}/unused", handsets=HandsetConfig(absent=1.0)) as m:
        twilio = m.manifest.vendors["twilio"]
        callback = f"{reports.url}/absent/status"
        sent = twilio_send(client, twilio, {"To": PHONE, "From": "+15005550006", "Body": "x",
                                            "StatusCallback": callback})
        assert sent.status_code == 201  # the vendor accepts; the handset is what fails
        [report1, report2] = reports.wait_for("/absent/status", 2)
        assert [dict(parse_qsl(r.body.decode()))["MessageStatus"]
                for r in (report1, report2)] == ["sent", "undelivered"]
        [send] = read_journal(m.journal_dir).of(SendRecorded)
        assert (send.handset, send.inbox_at) == ("absent", None)


def test_a_message_matching_a_spam_rule_lands_in_the_spam_folder(
        tmp_path: Path, reports: Receiver, client: httpx.Client) -> None:
    rules = HandsetConfig(spam=SpamRules(content=["贷款"]))
    with running_mocks(tmp_path, f"{reports.url}/unused", handsets=rules) as m:
        twilio = m.manifest.vendors["twilio"]
        for body in ("您的贷款即将到期", "您的房贷即将到期"):
            twilio_send(client, twilio, {"To": PHONE, "From": "+15005550006", "Body": body})
        sends = read_journal(m.journal_dir).of(SendRecorded)
        assert [s.handset for s in sends] == ["spam", "delivered"]
        assert all(s.inbox_at is not None for s in sends)


def test_a_stop_reply_opts_the_borrower_out_and_reaches_the_notifier_signed(
        tmp_path: Path, reports: Receiver, client: httpx.Client) -> None:
    inbound = f"{reports.url}/twilio/inbound"
    with running_mocks(tmp_path, f"{reports.url}/unused", inbound_url=inbound,
                       handsets=HandsetConfig(stop=1.0)) as m:
        twilio = m.manifest.vendors["twilio"]
        for _ in range(2):
            twilio_send(client, twilio, {"To": PHONE, "From": "+15005550006", "Body": "x"})
        [reply] = reports.wait_for("/twilio/inbound", 1)
        params = dict(parse_qsl(reply.body.decode()))
        assert (params["From"], params["To"], params["Body"]) == (PHONE, "+15005550006", "STOP")
        token = twilio.credentials["auth_token"]
        assert reply.headers["X-Twilio-Signature"] == twilio_signature(token, inbound, params)
        opted = read_journal(m.journal_dir).of(BorrowerOptedOut)
        assert [(o.phone, o.vendor) for o in opted] == [(PHONE, "twilio")]  # once, not twice


def test_an_aliyun_stop_reply_comes_as_an_smsup_array(
        tmp_path: Path, reports: Receiver, client: httpx.Client) -> None:
    inbound = f"{reports.url}/aliyun/inbound"
    with running_mocks(tmp_path, f"{reports.url}/unused", inbound_url=inbound,
                       handsets=HandsetConfig(stop=1.0)) as m:
        aliyun = m.manifest.vendors["aliyun"]
        answer = aliyun_send(client, aliyun, {
            "PhoneNumbers": "13800000001", "SignName": "示例银行", "TemplateCode": "SMS_T1",
            "TemplateParam": template_param(name="王", amount="1.00", ref="AAAAAAAA")})
        assert answer.json()["Code"] == "OK"
        [reply] = reports.wait_for("/aliyun/inbound", 1)
        [item] = json.loads(reply.body)
        assert (item["phone_number"], item["content"]) == ("13800000001", "TD")
