"""The Alibaba Cloud mock: V1-signed RPC SendSms, business errors in HTTP 200, SmsReport pushes."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from mockkit import (
    REPORT_PATH,
    SIGN_NAME,
    Mocks,
    Receiver,
    aliyun_post,
    aliyun_send,
    aliyun_signed,
    aliyun_v1_signature,
    marker,
    template_param,
    wait_until,
)

from harness.journal import SendRecorded, read_journal
from mocks.manifest import VendorEndpoint

PHONE = "13912345678"


def aliyun(mocks: Mocks) -> VendorEndpoint:
    return mocks.manifest.vendors["aliyun"]


def sms(ref: str, **overrides: str) -> dict[str, str]:
    """SendSms business parameters for reminder `ref`, with OutId = ref."""
    return {"PhoneNumbers": PHONE, "SignName": SIGN_NAME, "TemplateCode": "SMS_T1",
            "TemplateParam": template_param(name="王秀英", amount="5234.00", ref=ref),
            "OutId": ref, **overrides}


def recorded(mocks: Mocks, ref: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded)
            if s.vendor == "aliyun" and ref in s.body]


def report_items(reports: Receiver) -> list[dict[str, Any]]:
    """Every SmsReport item pushed so far, from every batch."""
    return [item for push in reports.on(REPORT_PATH) for item in json.loads(push.body)]


def test_signed_send_is_ok_with_biz_id(client: httpx.Client, mocks: Mocks) -> None:
    response = aliyun_send(client, aliyun(mocks), sms(marker()))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["Code"], body["Message"]) == ("OK", "OK")
    assert re.fullmatch(r"\d+\^0", body["BizId"])
    assert body["RequestId"]


def test_send_records_the_rendered_text_under_sign_name(
        client: httpx.Client, mocks: Mocks) -> None:
    ref = marker()

    biz_id = aliyun_send(client, aliyun(mocks), sms(ref)).json()["BizId"]

    [send] = recorded(mocks, ref)
    assert send.body == f"【示例银行】尊敬的王秀英，还款5234.00元，ref:{ref}"
    assert send.client_ref == ref
    assert send.to == "+8613912345678"
    assert send.message_id == biz_id
    assert send.request["method"] == "POST"
    assert send.request["path"] == "/"
    assert send.request["body"] == ""
    sent = dict(parse_qsl(str(send.request["query"]), keep_blank_values=True))
    assert {k: sent[k] for k in ("Action", "PhoneNumbers", "OutId")} == {
        "Action": "SendSms", "PhoneNumbers": PHONE, "OutId": ref}


@pytest.mark.parametrize("number", ["13912345678", "+8613912345678", "008613912345678",
                                    "8613912345678"])
def test_domestic_prefixes_are_stored_as_e164(
        client: httpx.Client, mocks: Mocks, number: str) -> None:
    ref = marker()

    response = aliyun_send(client, aliyun(mocks), sms(ref, PhoneNumbers=number))

    assert response.json()["Code"] == "OK"
    assert [s.to for s in recorded(mocks, ref)] == ["+8613912345678"]


def test_two_numbers_make_two_records(client: httpx.Client, mocks: Mocks) -> None:
    ref = marker()

    response = aliyun_send(client, aliyun(mocks),
                           sms(ref, PhoneNumbers="13912345678,+8613800000001"))

    assert response.json()["Code"] == "OK"
    sends = recorded(mocks, ref)
    assert sorted(s.to for s in sends) == ["+8613800000001", "+8613912345678"]
    assert {s.message_id for s in sends} == {response.json()["BizId"]}


def test_send_is_listed_by_the_control_api(client: httpx.Client, mocks: Mocks) -> None:
    ref = marker()

    aliyun_send(client, aliyun(mocks), sms(ref))

    listing = client.get(f"{aliyun(mocks).url}/__notifychaos/sends").json()
    assert listing["vendor"] == "aliyun"
    assert [s["client_ref"] for s in listing["sends"] if s["client_ref"] == ref] == [ref]


def test_sms_report_is_pushed_with_out_id(
        client: httpx.Client, mocks: Mocks, reports: Receiver) -> None:
    ref = marker()

    biz_id = aliyun_send(client, aliyun(mocks), sms(ref)).json()["BizId"]

    wait_until(lambda: any(i["out_id"] == ref for i in report_items(reports)),
               f"an SmsReport item with out_id {ref}")
    [item] = [i for i in report_items(reports) if i["out_id"] == ref]
    assert item["phone_number"] == PHONE
    assert item["success"] is True
    assert item["err_code"] == "DELIVERED"
    assert item["biz_id"] == biz_id
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", item["send_time"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", item["report_time"])
    [push] = [p for p in reports.on(REPORT_PATH) if ref.encode() in p.body]
    assert push.method == "POST"
    assert push.headers["Content-Type"].startswith("application/json")
    assert isinstance(json.loads(push.body), list)


def test_wrong_secret_is_400_signature_does_not_match(
        client: httpx.Client, mocks: Mocks) -> None:
    ref = marker()

    response = aliyun_send(client, aliyun(mocks), sms(ref), secret="not-the-secret")

    assert response.status_code == 400
    body = response.json()
    assert body["Code"] == "SignatureDoesNotMatch"
    assert {"RequestId", "HostId", "Message", "Recommend"} <= body.keys()
    assert recorded(mocks, ref) == []


def test_tampered_parameter_breaks_the_signature(client: httpx.Client, mocks: Mocks) -> None:
    ref = marker()
    params = aliyun_signed(aliyun(mocks), sms(ref))
    params["PhoneNumbers"] = "13800000001"

    response = aliyun_post(client, aliyun(mocks), params)

    assert response.status_code == 400
    assert response.json()["Code"] == "SignatureDoesNotMatch"
    assert recorded(mocks, ref) == []


def test_unknown_access_key_is_404(client: httpx.Client, mocks: Mocks) -> None:
    ref = marker()

    response = aliyun_send(client, aliyun(mocks), sms(ref), key_id="LTAI" + "x" * 20)

    assert response.status_code == 404
    assert response.json()["Code"] == "InvalidAccessKeyId.NotFound"
    assert recorded(mocks, ref) == []


def test_reused_signature_nonce_is_400(client: httpx.Client, mocks: Mocks) -> None:
    nonce = uuid.uuid4().hex
    first_ref, second_ref = marker(), marker()

    first = aliyun_send(client, aliyun(mocks), sms(first_ref), nonce=nonce)
    second = aliyun_send(client, aliyun(mocks), sms(second_ref), nonce=nonce)

    assert first.json()["Code"] == "OK"
    assert second.status_code == 400
    assert second.json()["Code"] == "SignatureNonceUsed"
    assert recorded(mocks, second_ref) == []


def test_unknown_template_is_http_200_template_illegal(
        client: httpx.Client, mocks: Mocks) -> None:
    ref = marker()

    response = aliyun_send(client, aliyun(mocks), sms(ref, TemplateCode="SMS_NOPE"))

    assert response.status_code == 200
    assert response.json()["Code"] == "isv.SMS_TEMPLATE_ILLEGAL"
    assert "BizId" not in response.json()
    assert recorded(mocks, ref) == []


def test_unknown_sign_name_is_http_200_signature_illegal(
        client: httpx.Client, mocks: Mocks) -> None:
    ref = marker()

    response = aliyun_send(client, aliyun(mocks), sms(ref, SignName="别的银行"))

    assert response.status_code == 200
    assert response.json()["Code"] == "isv.SMS_SIGNATURE_ILLEGAL"
    assert recorded(mocks, ref) == []


@pytest.mark.parametrize("numbers", ["12345", "+15551234567", "13912345678,139"],
                         ids=["too-short", "not-mainland", "one-bad-of-two"])
def test_bad_phone_is_http_200_mobile_number_illegal(
        client: httpx.Client, mocks: Mocks, numbers: str) -> None:
    ref = marker()

    response = aliyun_send(client, aliyun(mocks), sms(ref, PhoneNumbers=numbers))

    assert response.status_code == 200
    assert response.json()["Code"] == "isv.MOBILE_NUMBER_ILLEGAL"
    assert recorded(mocks, ref) == []


def test_get_signed_as_get_is_accepted(client: httpx.Client, mocks: Mocks) -> None:
    vendor = aliyun(mocks)
    ref = marker()
    params = aliyun_signed(vendor, sms(ref))
    del params["Signature"]
    params["Signature"] = aliyun_v1_signature(
        vendor.credentials["access_key_secret"], params, "GET")

    response = client.get(f"{vendor.url}/", params=params)

    assert response.json()["Code"] == "OK"
    assert [s.client_ref for s in recorded(mocks, ref)] == [ref]


def test_non_ascii_signature_is_400_not_a_crash(client: httpx.Client, mocks: Mocks) -> None:
    ref = marker()
    params = {**aliyun_signed(aliyun(mocks), sms(ref)), "Signature": "签名"}

    response = aliyun_post(client, aliyun(mocks), params)

    assert response.status_code == 400
    assert response.json()["Code"] == "SignatureDoesNotMatch"
    assert recorded(mocks, ref) == []
