"""The Twilio mock: Messages.json with HTTP Basic, Twilio's error codes, signed status callbacks."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import httpx
from mockkit import Mocks, Receiver, marker, twilio_send, twilio_signature

from harness.journal import SendRecorded, read_journal
from mocks.manifest import VendorEndpoint

TO = "+8613912345678"


def twilio(mocks: Mocks) -> VendorEndpoint:
    return mocks.manifest.vendors["twilio"]


def form(mocks: Mocks, body: str, **extra: str) -> dict[str, str]:
    return {"To": TO, "From": twilio(mocks).credentials["from"], "Body": body, **extra}


def recorded(mocks: Mocks, body: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded) if s.body == body]


def listed(client: httpx.Client, mocks: Mocks) -> dict[str, Any]:
    response = client.get(f"{twilio(mocks).url}/__notifychaos/sends")
    assert response.status_code == 200
    listing: dict[str, Any] = response.json()
    return listing


def test_send_is_accepted_as_queued_message(client: httpx.Client, mocks: Mocks) -> None:
    text = f"还款提醒 ref:{marker()}"

    response = twilio_send(client, twilio(mocks), form(mocks, text))

    assert response.status_code == 201, response.text
    message = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
    assert message["status"] == "queued"
    assert message["to"] == TO
    assert message["from"] == twilio(mocks).credentials["from"]
    assert message["body"] == text
    assert message["account_sid"] == twilio(mocks).credentials["account_sid"]


def test_send_is_journaled_with_the_raw_request(client: httpx.Client, mocks: Mocks) -> None:
    text = f"还款提醒 ref:{marker()}"

    sid = twilio_send(client, twilio(mocks), form(mocks, text)).json()["sid"]

    [send] = recorded(mocks, text)
    assert (send.vendor, send.message_id, send.to, send.client_ref) == ("twilio", sid, TO, None)
    assert send.inbox_at is not None  # the handset received it (no handset faults set)
    account = twilio(mocks).credentials["account_sid"]
    assert send.request["method"] == "POST"
    assert send.request["path"] == f"/2010-04-01/Accounts/{account}/Messages.json"
    assert send.request["headers"]["Authorization"].startswith("Basic ")
    assert dict(parse_qsl(send.request["body"])) == form(mocks, text)


def test_send_is_listed_by_the_control_api(client: httpx.Client, mocks: Mocks) -> None:
    text = f"还款提醒 ref:{marker()}"

    sid = twilio_send(client, twilio(mocks), form(mocks, text)).json()["sid"]

    listing = listed(client, mocks)
    assert listing["vendor"] == "twilio"
    [send] = [s for s in listing["sends"] if s["message_id"] == sid]
    assert (send["to"], send["body"], send["kind"]) == (TO, text, "send.recorded")
    assert "request" not in send


def test_duplicate_send_is_recorded_twice(client: httpx.Client, mocks: Mocks) -> None:
    text = f"还款提醒 ref:{marker()}"

    first = twilio_send(client, twilio(mocks), form(mocks, text))
    second = twilio_send(client, twilio(mocks), form(mocks, text))

    assert first.status_code == second.status_code == 201
    sids = {first.json()["sid"], second.json()["sid"]}
    assert len(sids) == 2
    assert {s.message_id for s in recorded(mocks, text)} == sids
    assert {s["message_id"] for s in listed(client, mocks)["sends"] if s["body"] == text} == sids


def test_wrong_auth_token_is_401_code_20003(client: httpx.Client, mocks: Mocks) -> None:
    text = f"还款提醒 ref:{marker()}"

    response = twilio_send(client, twilio(mocks), form(mocks, text), auth_token="0" * 32)

    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert response.json()["status"] == 401
    assert recorded(mocks, text) == []


def test_other_account_sid_in_path_is_401(client: httpx.Client, mocks: Mocks) -> None:
    vendor = twilio(mocks)
    credentials = vendor.credentials
    text = f"还款提醒 ref:{marker()}"

    response = client.post(
        f"{vendor.url}/2010-04-01/Accounts/AC{'0' * 32}/Messages.json",
        data=form(mocks, text), auth=(credentials["account_sid"], credentials["auth_token"]))

    assert response.status_code == 401
    assert response.json()["code"] == 20003


def test_missing_to_is_400_code_21604(client: httpx.Client, mocks: Mocks) -> None:
    text = f"还款提醒 ref:{marker()}"
    without_to = {k: v for k, v in form(mocks, text).items() if k != "To"}

    response = twilio_send(client, twilio(mocks), without_to)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 21604
    assert body["status"] == 400
    assert body["more_info"] == "https://www.twilio.com/docs/errors/21604"
    assert recorded(mocks, text) == []


def test_invalid_to_is_400_code_21211(client: httpx.Client, mocks: Mocks) -> None:
    text = f"还款提醒 ref:{marker()}"

    response = twilio_send(client, twilio(mocks), {**form(mocks, text), "To": "13912345678"})

    assert response.status_code == 400
    assert response.json()["code"] == 21211
    assert recorded(mocks, text) == []


def test_status_callbacks_sent_then_delivered_are_signed(
        client: httpx.Client, mocks: Mocks, reports: Receiver) -> None:
    path = f"/twilio/status?reminder={marker()}"
    callback_url = reports.url + path
    vendor = twilio(mocks)

    sid = twilio_send(client, vendor, form(mocks, "hi", StatusCallback=callback_url)).json()["sid"]

    callbacks = reports.wait_for(path, 2)
    params = [dict(parse_qsl(c.body.decode(), keep_blank_values=True)) for c in callbacks]
    assert [p["MessageStatus"] for p in params] == ["sent", "delivered"]
    for callback, fields in zip(callbacks, params, strict=True):
        assert callback.method == "POST"
        assert callback.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert fields["MessageSid"] == sid
        assert fields["To"] == TO
        assert fields["From"] == vendor.credentials["from"]
        assert fields["AccountSid"] == vendor.credentials["account_sid"]
        expected = twilio_signature(vendor.credentials["auth_token"], callback_url, fields)
        assert callback.headers["X-Twilio-Signature"] == expected
        assert twilio_signature("0" * 32, callback_url, fields) != expected
