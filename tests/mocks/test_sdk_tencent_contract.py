"""The official Tencent Cloud SDK against the SMS mock, unchanged but for its endpoint."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from mockkit import REPORT_PATH, SIGN_NAME, Mocks, Receiver, marker, wait_until
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from harness.journal import SendRecorded, read_journal


def sdk(mocks: Mocks, secret: str | None = None) -> sms_client.SmsClient:
    vendor = mocks.manifest.vendors["tencent"]
    cred = credential.Credential(vendor.credentials["secret_id"],
                                 secret or vendor.credentials["secret_key"])
    http = HttpProfile(endpoint=urlsplit(vendor.url).netloc, protocol="http", reqTimeout=5)
    return sms_client.SmsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))


def request(mocks: Mocks, numbers: list[str], session: str) -> models.SendSmsRequest:
    req = models.SendSmsRequest()
    req.SmsSdkAppId = mocks.manifest.vendors["tencent"].credentials["sdk_app_id"]
    req.SignName, req.TemplateId = SIGN_NAME, "1234567"
    req.TemplateParamSet = ["王伟", "1.00", session]
    req.PhoneNumberSet, req.SessionContext = numbers, session
    return req


@pytest.fixture
def faults(mocks: Mocks) -> Any:
    url = mocks.manifest.vendors["tencent"].control_url
    yield lambda **values: httpx.put(url, json=values, timeout=5).raise_for_status()
    httpx.delete(url, timeout=5)


def test_the_sdk_sends_and_reports_come_back_batched(mocks: Mocks, reports: Receiver) -> None:
    session = marker()
    answer = sdk(mocks).SendSms(request(mocks, ["+8613800000001"], session))
    [status] = answer.SendStatusSet
    assert (status.Code, status.SessionContext) == ("Ok", session)
    [recorded] = [s for s in read_journal(mocks.journal_dir).of(SendRecorded)
                  if s.client_ref == session]
    assert recorded.body == f"【{SIGN_NAME}】尊敬的王伟，还款1.00元，ref:{session}"

    def reported() -> list[dict[str, Any]]:
        return [item for r in reports.on(REPORT_PATH) for item in json.loads(r.body)
                if isinstance(item, dict) and item.get("ext", {}).get("SessionContext") == session]

    [item] = wait_until(reported, "a Tencent status callback")
    assert (item["mobile"], item["report_status"]) == ("13800000001", "SUCCESS")


def test_a_wrong_secret_is_refused_the_tencent_way(mocks: Mocks) -> None:
    with pytest.raises(TencentCloudSDKException) as refused:
        sdk(mocks, secret="x" * 32).SendSms(request(mocks, ["+8613800000001"], marker()))
    assert refused.value.get_code() == "AuthFailure.SignatureFailure"


def test_throttling_is_request_limit_exceeded(mocks: Mocks, faults: Any) -> None:
    faults(throttle=True)
    with pytest.raises(TencentCloudSDKException) as throttled:
        sdk(mocks).SendSms(request(mocks, ["+8613800000001"], marker()))
    assert throttled.value.get_code() == "RequestLimitExceeded"


def test_a_multi_recipient_send_can_fail_in_part(mocks: Mocks, faults: Any) -> None:
    faults(partial=1.0, barred_numbers=["+8613900000002"])
    answer = sdk(mocks).SendSms(request(mocks, ["+8613800000001", "+8613900000002"], marker()))
    assert [s.Code for s in answer.SendStatusSet] == [
        "LimitExceeded.PhoneNumberDailyLimit", "FailedOperation.PhoneNumberInBlacklist"]
