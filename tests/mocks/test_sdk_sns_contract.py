"""The official AWS SDK (boto3) against the SNS mock, unchanged but for its endpoint URL."""

from __future__ import annotations

from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError
from mockkit import Mocks, marker

from harness.journal import SendRecorded, VendorCall, read_journal

REGION = "ap-southeast-1"


def sns(mocks: Mocks, secret: str | None = None, attempts: int = 1) -> Any:
    vendor = mocks.manifest.vendors["sns"]
    return boto3.client(
        "sns", endpoint_url=vendor.url, region_name=REGION,
        aws_access_key_id=vendor.credentials["access_key_id"],
        aws_secret_access_key=secret or vendor.credentials["secret_access_key"],
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"},
                      connect_timeout=5, read_timeout=5))


def records(mocks: Mocks, body: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded) if s.body == body]


@pytest.fixture
def faults(mocks: Mocks) -> Any:
    url = mocks.manifest.vendors["sns"].control_url

    def switch(**values: Any) -> None:
        httpx.put(url, json=values, timeout=5).raise_for_status()

    yield switch
    httpx.delete(url, timeout=5)


def test_boto3_publishes_and_the_record_reads_like_localstack(mocks: Mocks) -> None:
    body = f"reminder ref:{marker()}"
    answer = sns(mocks).publish(
        PhoneNumber="+8613800000001", Message=body,
        MessageAttributes={"AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "BANK"}})
    [recorded] = records(mocks, body)
    assert recorded.message_id == answer["MessageId"] and recorded.to == "+8613800000001"
    listing = httpx.get(f"{mocks.manifest.vendors['sns'].url}/_aws/sns/sms-messages",
                        params={"region": REGION, "phoneNumber": "+8613800000001"}).json()
    [message] = [m for m in listing["sms_messages"]["+8613800000001"] if m["Message"] == body]
    assert message["MessageAttributes"]["AWS.SNS.SMS.SenderID"]["StringValue"] == "BANK"


def test_a_wrong_secret_is_refused_the_aws_way(mocks: Mocks) -> None:
    with pytest.raises(ClientError) as refused:
        sns(mocks, secret="x" * 40).publish(PhoneNumber="+8613800000001", Message="x")
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "SignatureDoesNotMatch", 403)


def test_an_invalid_number_is_an_invalid_parameter(mocks: Mocks) -> None:
    with pytest.raises(ClientError) as refused:
        sns(mocks).publish(PhoneNumber="13800000001", Message="x")
    assert refused.value.response["Error"]["Code"] == "InvalidParameter"


def test_throttling_is_retried_by_botocore_and_each_try_reaches_the_mock(
        mocks: Mocks, faults: Any) -> None:
    faults(throttle=True)
    before = len(read_journal(mocks.journal_dir).of(VendorCall))
    with pytest.raises(ClientError) as throttled:
        sns(mocks, attempts=3).publish(PhoneNumber="+8613800000001", Message="x")
    assert throttled.value.response["Error"]["Code"] == "Throttling"
    calls = read_journal(mocks.journal_dir).of(VendorCall)[before:]
    assert [c.outcome for c in calls if c.vendor == "sns"] == ["refused"] * 3


def test_a_lost_response_makes_botocore_send_the_message_again(
        mocks: Mocks, faults: Any) -> None:
    faults(response_lost=1.0)
    body = f"lost ref:{marker()}"
    with pytest.raises(ConnectionClosedError):
        sns(mocks, attempts=3).publish(PhoneNumber="+8613800000001", Message=body)
    assert len(records(mocks, body)) == 3  # one message, three copies on the borrower's phone
