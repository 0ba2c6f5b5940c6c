"""Compliance faults through each vendor's official SDK: a template or signature no longer
approved, Twilio's 21610 after a STOP, and the carrier's content filter (drop or spam)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
from alibabacloud_dysmsapi20170525 import models as aliyun_models
from alibabacloud_dysmsapi20170525.client import Client as AliyunClient
from alibabacloud_tea_openapi.models import Config as AliyunConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from mockkit import (
    REPORT_PATH,
    SIGN_NAME,
    Mocks,
    Receiver,
    Switch,
    fault_switch,
    marker,
    running_mocks,
    wait_until,
)
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as tencent_models
from tencentcloud.sms.v20210111 import sms_client
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client as TwilioClient
from vonage import Auth, HttpClientOptions, Vonage
from vonage_sms import SmsMessage
from vonage_sms.errors import SmsError

from harness.journal import BorrowerOptedOut, FaultTouched, SendRecorded, VendorCall, read_journal
from mocks.handsets import HandsetConfig

FROM, OTHER_FROM = "+15005550006", "+15005550007"
STOP_AFTER = 0.2


@pytest.fixture(scope="module")
def mocks(tmp_path_factory: pytest.TempPathFactory, reports: Receiver) -> Iterator[Mocks]:
    """This module's mock process: every borrower replies STOP to a message in their inbox
    (so each test sends to numbers of its own)."""
    with running_mocks(tmp_path_factory.mktemp("compliance"), reports.url + REPORT_PATH,
                       handsets=HandsetConfig(stop=1.0, stop_after=STOP_AFTER)) as served:
        yield served


@pytest.fixture(autouse=True)
def _sdk_environment(mocks: Mocks, monkeypatch: pytest.MonkeyPatch) -> None:
    # Vonage's SDK speaks HTTPS only (trust the run's CA); Twilio's edge or region settings
    # would rewrite the mock's host name.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", mocks.manifest.ca_bundle)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)


_numbers = iter(range(10_000))


def phone() -> str:
    """A mainland number no other test of this module sends to."""
    return f"+86139{next(_numbers):08d}"


# --- The official clients, pointed at the mocks ------------------------------------------------

def twilio(mocks: Mocks) -> TwilioClient:
    vendor = mocks.manifest.vendors["twilio"]
    client = TwilioClient(vendor.credentials["account_sid"], vendor.credentials["auth_token"])
    client.api.base_url = vendor.url
    return client


def aliyun(mocks: Mocks) -> AliyunClient:
    vendor = mocks.manifest.vendors["aliyun"]
    return AliyunClient(AliyunConfig(access_key_id=vendor.credentials["access_key_id"],
                                     access_key_secret=vendor.credentials["access_key_secret"],
                                     endpoint=urlsplit(vendor.url).netloc, protocol="HTTP"))


def aliyun_request(to: str, ref: str) -> aliyun_models.SendSmsRequest:
    return aliyun_models.SendSmsRequest(
        phone_numbers=to.removeprefix("+86"), sign_name=SIGN_NAME, template_code="SMS_T1",
        template_param=json.dumps({"name": "王伟", "amount": "1.00", "ref": ref}), out_id=ref)


def tencent(mocks: Mocks) -> sms_client.SmsClient:
    vendor = mocks.manifest.vendors["tencent"]
    cred = credential.Credential(vendor.credentials["secret_id"], vendor.credentials["secret_key"])
    http = HttpProfile(endpoint=urlsplit(vendor.url).netloc, protocol="http", reqTimeout=5)
    return sms_client.SmsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))


def tencent_request(mocks: Mocks, to: str, ref: str) -> tencent_models.SendSmsRequest:
    request = tencent_models.SendSmsRequest()
    request.SmsSdkAppId = mocks.manifest.vendors["tencent"].credentials["sdk_app_id"]
    request.SignName, request.TemplateId = SIGN_NAME, "1234567"
    request.TemplateParamSet, request.PhoneNumberSet = ["王伟", "1.00", ref], [to]
    request.SessionContext = ref
    return request


def vonage(mocks: Mocks) -> Vonage:
    vendor = mocks.manifest.vendors["vonage"]
    return Vonage(Auth(api_key=vendor.credentials["api_key"],
                       api_secret=vendor.credentials["api_secret"]),
                  HttpClientOptions(rest_host=urlsplit(vendor.url).netloc, timeout=5))


def sns(mocks: Mocks) -> Any:
    vendor = mocks.manifest.vendors["sns"]
    return boto3.client("sns", endpoint_url=vendor.url, region_name="ap-southeast-1",
                        aws_access_key_id=vendor.credentials["access_key_id"],
                        aws_secret_access_key=vendor.credentials["secret_access_key"],
                        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"},
                                          connect_timeout=5, read_timeout=5))


# --- What each SDK shows of a refused send -----------------------------------------------------

def twilio_refusal(mocks: Mocks, ref: str) -> tuple[object, ...]:
    with pytest.raises(TwilioRestException) as refused:
        twilio(mocks).messages.create(to=phone(), from_=FROM, body=f"reminder ref:{ref}")
    return refused.value.status, refused.value.code


def aliyun_refusal(mocks: Mocks, ref: str) -> tuple[object, ...]:
    answer = aliyun(mocks).send_sms(aliyun_request(phone(), ref))  # business errors: no raise
    return answer.status_code, answer.body.code, answer.body.message


def tencent_refusal(mocks: Mocks, ref: str) -> tuple[object, ...]:
    with pytest.raises(TencentCloudSDKException) as refused:
        tencent(mocks).SendSms(tencent_request(mocks, phone(), ref))
    return (refused.value.get_code(),)


def vonage_refusal(mocks: Mocks, ref: str) -> tuple[object, ...]:
    with pytest.raises(SmsError) as refused:
        vonage(mocks).sms.send(SmsMessage(to=phone().removeprefix("+"), from_="BANK",
                                          text=f"reminder ref:{ref}", client_ref=ref))
    return (str(refused.value).split("error code ", 1)[1],)


def sns_refusal(mocks: Mocks, ref: str) -> tuple[object, ...]:
    with pytest.raises(ClientError) as refused:
        sns(mocks).publish(PhoneNumber=phone(), Message=f"reminder ref:{ref}")
    response: Any = refused.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"]["Message"])


REFUSALS: dict[tuple[str, str], tuple[Callable[[Mocks, str], tuple[object, ...]],
                                      tuple[object, ...]]] = {
    ("twilio", "signature"): (twilio_refusal, (400, 21606)),
    ("aliyun", "template"): (aliyun_refusal, (200, "isv.SMS_TEMPLATE_ILLEGAL",
                                              "该账号下找不到对应模板")),
    ("aliyun", "signature"): (aliyun_refusal, (200, "isv.SMS_SIGNATURE_ILLEGAL",
                                               "该账号下找不到对应签名")),
    ("tencent", "template"): (tencent_refusal, ("FailedOperation.TemplateIncorrectOrUnapproved",)),
    ("tencent", "signature"): (tencent_refusal,
                               ("FailedOperation.SignatureIncorrectOrUnapproved",)),
    ("vonage", "template"): (vonage_refusal, (
        "6: Invalid Message - the text does not match a registered template",)),
    ("vonage", "signature"): (vonage_refusal, ("15: Illegal Sender Address - rejected",)),
    ("sns", "template"): (sns_refusal, (
        400, "InvalidParameter", "Invalid parameter: MessageAttributes Reason: "
        "AWS.MM.SMS.TemplateId is not registered for this origination identity")),
    ("sns", "signature"): (sns_refusal, (
        400, "InvalidParameter", "Invalid parameter: MessageAttributes Reason: "
        "AWS.SNS.SMS.SenderID is not registered for this origination identity")),
}


# --- The journal --------------------------------------------------------------------------------

def touches(mocks: Mocks, vendor: str, switch: str) -> list[FaultTouched]:
    return [t for t in read_journal(mocks.journal_dir).of(FaultTouched)
            if (t.mock, t.switch) == (vendor, switch)]


def calls(mocks: Mocks, vendor: str) -> list[VendorCall]:
    return [c for c in read_journal(mocks.journal_dir).of(VendorCall) if c.vendor == vendor]


def recorded(mocks: Mocks, ref: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded) if ref in s.body]


def callbacks(mocks: Mocks, reports: Receiver, path: str) -> list[dict[str, str]]:
    """The Twilio status callbacks on `path`, each checked by the SDK's own validator."""
    validator = RequestValidator(mocks.manifest.vendors["twilio"].credentials["auth_token"])
    seen = []
    for request in reports.on(path):
        params = dict(parse_qsl(request.body.decode()))
        assert validator.validate(reports.url + path, params,
                                  request.headers["X-Twilio-Signature"])
        seen.append(params)
    return seen


@pytest.fixture
def twilio_faults(mocks: Mocks) -> Iterator[Switch]:
    with fault_switch(mocks, "twilio") as switch:
        yield switch


@pytest.fixture
def aliyun_faults(mocks: Mocks) -> Iterator[Switch]:
    with fault_switch(mocks, "aliyun") as switch:
        yield switch


# --- Template and signature rejected -----------------------------------------------------------

@pytest.mark.parametrize(("vendor", "rule"), list(REFUSALS),
                         ids=[f"{vendor}-{rule}" for vendor, rule in REFUSALS])
def test_a_rejected_rule_refuses_every_send_in_the_vendors_words(
        mocks: Mocks, vendor: str, rule: str) -> None:
    refusal, expected = REFUSALS[(vendor, rule)]
    before, calls_before = len(touches(mocks, vendor, "rejects")), len(calls(mocks, vendor))
    ref = marker()
    with fault_switch(mocks, vendor) as faults:
        faults(rejects=rule)
        assert refusal(mocks, ref) == expected
        assert refusal(mocks, marker()) == expected  # a retry meets the same refusal
    assert recorded(mocks, ref) == []
    touched = touches(mocks, vendor, "rejects")[before:]
    assert [(t.subject, t.detail) for t in touched] == [("", {"rejects": rule})] * 2
    assert [c.outcome for c in calls(mocks, vendor)[calls_before:]] == ["rejected"] * 2


def test_twilio_accepts_a_template_rejected_send_and_its_carrier_filters_it_30007(
        mocks: Mocks, twilio_faults: Switch, reports: Receiver) -> None:
    twilio_faults(rejects="template")
    ref, path = marker(), "/compliance/twilio-template"
    client = twilio(mocks)
    message = client.messages.create(to=phone(), from_=FROM, body=f"reminder ref:{ref}",
                                     status_callback=reports.url + path)
    assert message.status == "queued"
    [send] = recorded(mocks, ref)
    assert (send.message_id, send.handset, send.inbox_at) == (message.sid, "dropped", None)
    [touch] = [t for t in touches(mocks, "twilio", "rejects") if t.subject == message.sid]
    assert touch.detail == {"rejects": "template"}
    assert calls(mocks, "twilio")[-1].outcome == "accepted"
    reports.wait_for(path, 2)
    assert [(c["MessageSid"], c["MessageStatus"], c.get("ErrorCode")) for c in
            callbacks(mocks, reports, path)] == [(message.sid, "sent", None),
                                                 (message.sid, "undelivered", "30007")]
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30007)


# --- Twilio 21610 --------------------------------------------------------------------------------

def test_twilio_refuses_with_21610_every_send_to_a_number_that_replied_stop(
        mocks: Mocks) -> None:
    client, borrower = twilio(mocks), phone()
    client.messages.create(to=borrower, from_=FROM, body=f"reminder ref:{marker()}")
    wait_until(lambda: [o for o in read_journal(mocks.journal_dir).of(BorrowerOptedOut)
                        if (o.phone, o.vendor) == (borrower, "twilio")],
               f"{borrower}'s STOP")
    ref = marker()
    for _ in range(2):
        with pytest.raises(TwilioRestException) as refused:
            client.messages.create(to=borrower, from_=FROM, body=f"reminder ref:{ref}")
        assert (refused.value.status, refused.value.code) == (400, 21610)
        assert calls(mocks, "twilio")[-1].outcome == "rejected"
    assert recorded(mocks, ref) == []
    # The STOP was a reply to one sender: another may still write.
    other = client.messages.create(to=borrower, from_=OTHER_FROM, body=f"notice ref:{ref}")
    assert [s.message_id for s in recorded(mocks, ref)] == [other.sid]


# --- The carrier's content filter ---------------------------------------------------------------

def test_twilio_reports_a_message_the_content_filter_dropped_as_30007(
        mocks: Mocks, twilio_faults: Switch, reports: Receiver) -> None:
    twilio_faults(content_filter=r"https?://\S+", content_action="drop")
    ref, path = marker(), "/compliance/twilio-filtered"
    client = twilio(mocks)
    filtered = client.messages.create(to=phone(), from_=FROM, status_callback=reports.url + path,
                                      body=f"pay at https://bank.example/{ref}")
    passed = client.messages.create(to=phone(), from_=FROM, status_callback=reports.url + path,
                                    body=f"reminder ref:{ref}")
    sends = {s.message_id: s.handset for s in recorded(mocks, ref)}
    assert sends == {filtered.sid: "dropped", passed.sid: "delivered"}
    [touch] = [t for t in touches(mocks, "twilio", "content_filter") if t.subject == filtered.sid]
    assert touch.detail == {"action": "drop", "matched": f"https://bank.example/{ref}"}
    reports.wait_for(path, 4)
    final = {c["MessageSid"]: (c["MessageStatus"], c.get("ErrorCode"))
             for c in callbacks(mocks, reports, path) if c["MessageStatus"] != "sent"}
    assert final == {filtered.sid: ("undelivered", "30007"), passed.sid: ("delivered", None)}


def aliyun_receipts(reports: Receiver, ref: str) -> list[dict[str, Any]]:
    return [receipt for push in reports.on(REPORT_PATH) for receipt in json.loads(push.body)
            if isinstance(receipt, dict) and receipt.get("out_id", "").startswith(ref)]


def test_a_dropping_content_filter_is_silent_at_other_vendors(
        mocks: Mocks, aliyun_faults: Switch, reports: Receiver) -> None:
    aliyun_faults(content_filter="王伟", content_action="drop")
    ref = marker()
    answer = aliyun(mocks).send_sms(aliyun_request(phone(), f"{ref}-filtered"))
    assert answer.body.code == "OK"  # the vendor accepted it: the carrier drops it
    [send] = recorded(mocks, ref)
    assert (send.message_id, send.handset) == (answer.body.biz_id, "dropped")
    [touch] = [t for t in touches(mocks, "aliyun", "content_filter")
               if t.subject == answer.body.biz_id]
    assert touch.detail == {"action": "drop", "matched": "王伟"}
    aliyun_faults()
    after = aliyun(mocks).send_sms(aliyun_request(phone(), f"{ref}-after"))
    # Receipts go out in the order sends were accepted: once the later one's has come, the
    # filtered one's would have too.
    wait_until(lambda: [r for r in aliyun_receipts(reports, ref) if r["out_id"] == f"{ref}-after"],
               "the receipt of the send after the filter")
    assert [r["biz_id"] for r in aliyun_receipts(reports, ref)] == [after.body.biz_id]


def test_a_spam_content_filter_delivers_to_the_spam_folder(
        mocks: Mocks, aliyun_faults: Switch, reports: Receiver) -> None:
    aliyun_faults(content_filter=r"还款\d+(\.\d+)?元", content_action="spam")
    ref = marker()
    answer = aliyun(mocks).send_sms(aliyun_request(phone(), ref))
    assert answer.body.code == "OK"
    [send] = recorded(mocks, ref)
    assert send.handset == "spam" and send.inbox_at is not None
    [touch] = [t for t in touches(mocks, "aliyun", "content_filter")
               if t.subject == answer.body.biz_id]
    assert touch.detail == {"action": "spam", "matched": "还款1.00元"}
    [receipt] = wait_until(lambda: aliyun_receipts(reports, ref), "the spam-folder receipt")
    assert receipt["success"] is True  # the handset has it: only the borrower's folder differs
