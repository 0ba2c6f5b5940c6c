"""The Tencent Cloud SMS mock against the official SDK, unchanged but for its endpoint, and by
hand: the TC3 signature, batched status callbacks, and every fault as the SDK sees it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from mockkit import (
    REPORT_PATH,
    SIGN_NAME,
    Mocks,
    Receiver,
    Switch,
    fault_switch,
    marker,
    running_mocks,
    tencent_tc3_headers,
    wait_until,
)
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.retry import StandardRetryer
from tencentcloud.sms.v20210111 import models, sms_client

from harness.journal import SendRecorded, VendorCall, read_journal
from mocks.handsets import HandsetConfig

TEMPLATE_ID = "1234567"  # the fixture's template: "尊敬的{1}，还款{2}元，ref:{3}"


@pytest.fixture
def faults(mocks: Mocks) -> Iterator[Switch]:
    with fault_switch(mocks, "tencent") as switch:
        yield switch


def sdk(mocks: Mocks, *, secret_id: str | None = None, secret_key: str | None = None,
        retries: int = 0) -> sms_client.SmsClient:
    vendor = mocks.manifest.vendors["tencent"]
    cred = credential.Credential(secret_id or vendor.credentials["secret_id"],
                                 secret_key or vendor.credentials["secret_key"])
    http = HttpProfile(endpoint=urlsplit(vendor.url).netloc, protocol="http", reqTimeout=5)
    profile = ClientProfile(httpProfile=http)
    if retries:
        profile.retryer = StandardRetryer(max_attempts=retries + 1, backoff_fn=lambda n: 0)
    return sms_client.SmsClient(cred, "ap-guangzhou", profile)


def request(mocks: Mocks, numbers: list[str], session: str,
            params: list[str] | None = None) -> models.SendSmsRequest:
    req = models.SendSmsRequest()
    req.SmsSdkAppId = mocks.manifest.vendors["tencent"].credentials["sdk_app_id"]
    req.SignName, req.TemplateId = SIGN_NAME, TEMPLATE_ID
    req.TemplateParamSet = ["王伟", "1.00", session] if params is None else params
    req.PhoneNumberSet, req.SessionContext = numbers, session
    return req


def recorded(mocks: Mocks, session: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded)
            if s.client_ref == session]


def refused_code(call: Callable[[], object]) -> str:
    with pytest.raises(TencentCloudSDKException) as refused:
        call()
    return str(refused.value.get_code())


def test_the_sdk_sends_and_the_record_keeps_it(mocks: Mocks, client: httpx.Client) -> None:
    session = marker()
    answer = sdk(mocks).SendSms(request(mocks, ["+8613800000001"], session))
    [status] = answer.SendStatusSet
    assert (status.Code, status.Message, status.PhoneNumber, status.SessionContext,
            status.Fee, status.IsoCode) == (
        "Ok", "send success", "+8613800000001", session, 1, "CN")
    assert re.fullmatch(r"\d{4}:\d{26}", status.SerialNo)
    assert re.fullmatch(r"[0-9a-f-]{36}", answer.RequestId)
    [send] = recorded(mocks, session)
    assert (send.vendor, send.message_id, send.to) == ("tencent", status.SerialNo,
                                                       "+8613800000001")
    assert send.body == f"【{SIGN_NAME}】尊敬的王伟，还款1.00元，ref:{session}"
    assert send.request["headers"]["X-TC-Action"] == "SendSms"
    listing = client.get(mocks.manifest.vendors["tencent"].sends_url).json()["sends"]
    assert [s["message_id"] for s in listing if s["client_ref"] == session] == [status.SerialNo]


def test_status_callbacks_come_back_as_one_json_array(mocks: Mocks, reports: Receiver) -> None:
    session = marker()
    numbers = ["+8613800000001", "+8613800000002"]
    answer = sdk(mocks).SendSms(request(mocks, numbers, session))

    def pushes() -> list[list[dict[str, Any]]]:
        # A push batches whatever is due, other tests' reports too: keep this send's.
        batches = [json.loads(r.body) for r in reports.on(REPORT_PATH)]
        return [mine for b in batches if isinstance(b, list) and (mine := [
            item for item in b if item.get("ext", {}).get("SessionContext") == session])]

    [batch] = wait_until(pushes, "a Tencent status callback")
    assert sorted(item["sid"] for item in batch) == sorted(s.SerialNo for s in
                                                            answer.SendStatusSet)
    item = next(item for item in batch if item["mobile"] == "13800000001")
    assert item.keys() == {"user_receive_time", "nationcode", "mobile", "report_status",
                           "errmsg", "description", "sid", "ext"}
    assert (item["nationcode"], item["report_status"], item["errmsg"]) == (
        "86", "SUCCESS", "DELIVRD")
    assert item["ext"] == {"SessionContext": session}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", item["user_receive_time"])


def test_a_phone_left_off_is_reported_as_fail(tmp_path: Path, reports: Receiver) -> None:
    path = f"/tencent/{marker()}"
    with running_mocks(tmp_path, reports.url + path, handsets=HandsetConfig(absent=1.0)) as off:
        sdk(off).SendSms(request(off, ["+8613800000001"], marker()))
        [push] = reports.wait_for(path, 1)
    [item] = json.loads(push.body)
    assert (item["report_status"], item["errmsg"]) == ("FAIL", "UNDELIV")


def test_a_wrong_secret_or_an_unknown_secret_id_is_refused_the_tencent_way(
        mocks: Mocks) -> None:
    session = marker()
    send = request(mocks, ["+8613800000001"], session)
    assert refused_code(lambda: sdk(mocks, secret_key="x" * 32).SendSms(send)) == (
        "AuthFailure.SignatureFailure")
    assert refused_code(lambda: sdk(mocks, secret_id="AKID" + "x" * 32).SendSms(send)) == (
        "AuthFailure.SecretIdNotFound")
    assert recorded(mocks, session) == []


def test_the_signature_covers_body_host_service_and_time(
        mocks: Mocks, client: httpx.Client) -> None:
    vendor = mocks.manifest.vendors["tencent"]
    host = urlsplit(vendor.url).netloc
    keys = vendor.credentials["secret_id"], vendor.credentials["secret_key"]
    body = json.dumps({"PhoneNumberSet": ["+8613800000001"], "SmsSdkAppId":
                       vendor.credentials["sdk_app_id"], "SignName": SIGN_NAME,
                       "TemplateId": TEMPLATE_ID, "TemplateParamSet": ["a", "b", "c"],
                       "SessionContext": marker()}).encode()

    def code(headers: dict[str, str], sent: bytes = body) -> str:
        answer = client.post(vendor.url + "/", content=sent, headers=headers)
        assert answer.status_code == 200
        return str(answer.json()["Response"].get("Error", {}).get("Code", "ok"))

    assert code(tencent_tc3_headers(*keys, host, body)) == "ok"
    assert code(tencent_tc3_headers(*keys, host, body), body.replace(b'"a"', b'"z"')) == (
        "AuthFailure.SignatureFailure")
    elsewhere = tencent_tc3_headers(*keys, "sms.tencentcloudapi.com", body) | {"Host": host}
    assert code(elsewhere) == (
        "AuthFailure.SignatureFailure")
    assert code(tencent_tc3_headers(*keys, host, body, service="127")) == (
        "AuthFailure.SignatureFailure")
    assert code(tencent_tc3_headers(*keys, host, body, timestamp=int(time.time()) - 600)) == (
        "AuthFailure.SignatureExpire")
    assert code({"Content-Type": "application/json"}) == "AuthFailure.InvalidAuthorization"


def test_request_level_mistakes_are_response_errors(mocks: Mocks) -> None:
    session = marker()
    wrong_app = request(mocks, ["+8613800000001"], session)
    wrong_app.SmsSdkAppId = "1400000000"
    assert refused_code(lambda: sdk(mocks).SendSms(wrong_app)) == (
        "UnauthorizedOperation.SmsSdkAppIdVerifyFail")
    too_few = request(mocks, ["+8613800000001"], session, params=["王伟"])
    assert refused_code(lambda: sdk(mocks).SendSms(too_few)) == (
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate")
    assert refused_code(lambda: sdk(mocks).SendSms(request(mocks, [], session))) == (
        "MissingParameter.EmptyPhoneNumberSet")
    assert recorded(mocks, session) == []


def test_throttling_is_request_limit_exceeded_and_the_retryer_tries_again(
        mocks: Mocks, faults: Switch) -> None:
    faults(throttle=True)
    session = marker()
    send = request(mocks, ["+8613800000001"], session)
    before = len(read_journal(mocks.journal_dir).of(VendorCall))
    assert refused_code(lambda: sdk(mocks).SendSms(send)) == "RequestLimitExceeded"
    assert refused_code(lambda: sdk(mocks, retries=2).SendSms(send)) == "RequestLimitExceeded"
    calls = read_journal(mocks.journal_dir).of(VendorCall)[before:]
    assert [(c.vendor, c.outcome) for c in calls] == [("tencent", "refused")] * 4
    assert recorded(mocks, session) == []


@pytest.mark.parametrize("status", [500, 503])
def test_an_outage_is_an_http_status_the_sdk_calls_server_network_error(
        mocks: Mocks, faults: Switch, status: int) -> None:
    faults(outage=status)
    session = marker()
    with pytest.raises(TencentCloudSDKException) as refused:
        sdk(mocks).SendSms(request(mocks, ["+8613800000001"], session))
    assert refused.value.get_code() == "ServerNetworkError"
    assert json.loads(refused.value.get_message())["Response"]["Error"]["Code"] == (
        "InternalError")
    assert recorded(mocks, session) == []


def test_invalid_and_barred_numbers_fail_inside_the_send_status_set(
        mocks: Mocks, faults: Switch) -> None:
    faults(invalid_numbers=["+8613800000002"], barred_numbers=["+8613800000003"])
    session = marker()
    numbers = ["+8613800000001", "+8613800000002", "+8613800000003", "+4412"]
    answer = sdk(mocks).SendSms(request(mocks, numbers, session))
    assert [(s.PhoneNumber, s.Code) for s in answer.SendStatusSet] == [
        ("+8613800000001", "Ok"),
        ("+8613800000002", "InvalidParameterValue.IncorrectPhoneNumber"),
        ("+8613800000003", "FailedOperation.PhoneNumberInBlacklist"),
        ("+4412", "InvalidParameterValue.IncorrectPhoneNumber")]
    assert [(s.SerialNo, s.Fee) for s in answer.SendStatusSet[1:]] == [("", 0)] * 3
    assert [s.to for s in recorded(mocks, session)] == ["+8613800000001"]


def test_a_multi_recipient_send_can_fail_in_part(mocks: Mocks, faults: Switch) -> None:
    faults(partial=0.5)
    session = marker()
    numbers = [f"+86138000000{n:02}" for n in range(20)]
    answer = sdk(mocks).SendSms(request(mocks, numbers, session))
    codes = {s.PhoneNumber: s.Code for s in answer.SendStatusSet}
    assert set(codes.values()) == {"Ok", "LimitExceeded.PhoneNumberDailyLimit"}
    assert sorted(s.to for s in recorded(mocks, session)) == sorted(
        number for number, code in codes.items() if code == "Ok")


def test_a_lost_response_is_a_client_network_error_and_a_retryer_duplicates_the_send(
        mocks: Mocks, faults: Switch) -> None:
    faults(response_lost=1.0)
    session = marker()
    send = request(mocks, ["+8613800000001"], session)
    # By default the SDK does not retry: one record, and the caller cannot know it was sent.
    assert refused_code(lambda: sdk(mocks).SendSms(send)) == "ClientNetworkError"
    assert len(recorded(mocks, session)) == 1
    # With the SDK's StandardRetryer each attempt is sent again: three records in all.
    assert refused_code(lambda: sdk(mocks, retries=1).SendSms(send)) == "ClientNetworkError"
    sends = recorded(mocks, session)
    assert len(sends) == 3 and len({s.message_id for s in sends}) == 3
