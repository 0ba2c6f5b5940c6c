"""The official Alibaba Cloud SDK against the Dysmsapi mock, unchanged but for its endpoint."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from mockkit import SIGN_NAME, Mocks

from harness.journal import SendRecorded, read_journal


def sdk(mocks: Mocks, secret: str | None = None) -> Client:
    vendor = mocks.manifest.vendors["aliyun"]
    return Client(Config(access_key_id=vendor.credentials["access_key_id"],
                         access_key_secret=secret or vendor.credentials["access_key_secret"],
                         endpoint=urlsplit(vendor.url).netloc, protocol="HTTP"))


def request(out_id: str, template: str = "SMS_T1") -> models.SendSmsRequest:
    return models.SendSmsRequest(
        phone_numbers="13800000001", sign_name=SIGN_NAME, template_code=template,
        template_param=json.dumps({"name": "王伟", "amount": "1.00", "ref": out_id}),
        out_id=out_id)


def test_the_sdk_sends_with_its_default_signature_and_the_mock_records_it(mocks: Mocks) -> None:
    answer = sdk(mocks).send_sms(request("SDKALI01"))
    assert (answer.status_code, answer.body.code) == (200, "OK")
    recorded = [s for s in read_journal(mocks.journal_dir).of(SendRecorded)
                if s.client_ref == "SDKALI01"]
    assert [(s.to, s.message_id) for s in recorded] == [("+8613800000001", answer.body.biz_id)]
    assert "ACS3-HMAC-SHA256" in recorded[0].request["headers"]["Authorization"]


def test_a_wrong_secret_is_refused_the_alibaba_way(mocks: Mocks) -> None:
    with pytest.raises(ClientException) as refused:
        sdk(mocks, secret="not-the-secret").send_sms(request("SDKALI02"))
    assert (refused.value.code, refused.value.status_code) == ("SignatureDoesNotMatch", 400)


def test_a_business_error_comes_inside_http_200(mocks: Mocks) -> None:
    answer = sdk(mocks).send_sms(request("SDKALI03", template="SMS_UNKNOWN"))
    assert (answer.status_code, answer.body.code) == (200, "isv.SMS_TEMPLATE_ILLEGAL")
