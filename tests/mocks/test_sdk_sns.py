"""The official AWS SDK (boto3) against the SNS mock, unchanged but for its endpoint URL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError
from mockkit import CONTROL, Mocks, Switch, fault_switch, marker

from harness.journal import SendRecorded, VendorCall, read_journal

REGION = "ap-southeast-1"
TO = "+8613800000001"


def sns(mocks: Mocks, secret: str | None = None, key_id: str | None = None,
        retries: dict[str, Any] | None = None) -> Any:
    """A boto3 client of the mock; a single try unless `retries` says otherwise."""
    vendor = mocks.manifest.vendors["sns"]
    return boto3.client(
        "sns", endpoint_url=vendor.url, region_name=REGION,
        aws_access_key_id=key_id or vendor.credentials["access_key_id"],
        aws_secret_access_key=secret or vendor.credentials["secret_access_key"],
        config=Config(retries=retries or {"total_max_attempts": 1, "mode": "standard"},
                      connect_timeout=5, read_timeout=5))


def records(mocks: Mocks, body: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded) if s.body == body]


def calls_since(mocks: Mocks, before: int) -> list[str]:
    """The outcomes of the SNS API calls journaled after the first `before` calls."""
    calls = [c for c in read_journal(mocks.journal_dir).of(VendorCall) if c.vendor == "sns"]
    return [c.outcome for c in calls[before:]]


def call_count(mocks: Mocks) -> int:
    return len(calls_since(mocks, 0))


def error_of(refused: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = refused.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def faults(mocks: Mocks) -> Iterator[Switch]:
    with fault_switch(mocks, "sns") as switch:
        yield switch


def test_boto3_publishes_and_the_record_reads_like_localstack(mocks: Mocks) -> None:
    body = f"reminder ref:{marker()}"
    answer = sns(mocks).publish(
        PhoneNumber=TO, Message=body,
        MessageAttributes={"AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "BANK"},
                           "AWS.SNS.SMS.SMSType": {"DataType": "String",
                                                   "StringValue": "Transactional"}})
    [recorded] = records(mocks, body)
    assert (recorded.message_id, recorded.to, recorded.client_ref) == (answer["MessageId"], TO,
                                                                       None)
    listing = httpx.get(f"{mocks.manifest.vendors['sns'].url}/_aws/sns/sms-messages",
                        params={"region": REGION, "phoneNumber": TO}).json()
    assert listing["region"] == REGION
    [message] = [m for m in listing["sms_messages"][TO] if m["Message"] == body]
    assert message["MessageId"] == answer["MessageId"]
    assert message["MessageAttributes"] == {
        "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "BANK"},
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
    sends = httpx.get(mocks.manifest.vendors["sns"].sends_url, headers=CONTROL).json()["sends"]
    assert [s["message_id"] for s in sends if s["body"] == body] == [answer["MessageId"]]


def test_the_record_is_kept_per_region_as_signed(mocks: Mocks) -> None:
    body = f"elsewhere ref:{marker()}"
    vendor = mocks.manifest.vendors["sns"]
    boto3.client("sns", endpoint_url=vendor.url, region_name="eu-west-1",
                 aws_access_key_id=vendor.credentials["access_key_id"],
                 aws_secret_access_key=vendor.credentials["secret_access_key"],
                 ).publish(PhoneNumber=TO, Message=body)
    listing = httpx.get(f"{vendor.url}/_aws/sns/sms-messages", params={"region": "eu-west-1"})
    assert body in [m["Message"] for m in listing.json()["sms_messages"][TO]]


def test_a_wrong_secret_is_refused_the_aws_way(mocks: Mocks) -> None:
    with pytest.raises(ClientError) as refused:
        sns(mocks, secret="x" * 40).publish(PhoneNumber=TO, Message="x")
    assert error_of(refused) == ("SignatureDoesNotMatch", 403)


def test_an_unknown_access_key_is_an_invalid_client_token(mocks: Mocks) -> None:
    with pytest.raises(ClientError) as refused:
        sns(mocks, key_id="AKIA" + "Z" * 16).publish(PhoneNumber=TO, Message="x")
    assert error_of(refused) == ("InvalidClientTokenId", 403)


def signed_get(mocks: Mocks, params: dict[str, str], service: str = "sns") -> httpx.Response:
    """A query-protocol GET signed by botocore's own SigV4 signer (parameters in the query)."""
    vendor = mocks.manifest.vendors["sns"]
    credentials = Credentials(vendor.credentials["access_key_id"],
                              vendor.credentials["secret_access_key"])
    request = AWSRequest(method="GET", url=f"{vendor.url}/", params=params)
    SigV4Auth(credentials, service, REGION).add_auth(request)
    prepared = request.prepare()
    return httpx.get(prepared.url, headers=dict(prepared.headers.items()))


def test_a_query_string_request_signed_by_botocore_is_verified(mocks: Mocks) -> None:
    body = f"by query ref:{marker()} & more"
    answer = signed_get(mocks, {"Action": "Publish", "Version": "2010-03-31",
                                "PhoneNumber": TO, "Message": body})
    assert answer.status_code == 200, answer.text
    assert "<MessageId>" in answer.text and len(records(mocks, body)) == 1


def test_a_signature_scoped_to_another_service_is_refused(mocks: Mocks) -> None:
    answer = signed_get(mocks, {"Action": "Publish", "Version": "2010-03-31",
                                "PhoneNumber": TO, "Message": "x"}, service="sqs")
    assert answer.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in answer.text
    assert "Credential should be scoped to correct service: 'sns'." in answer.text


def test_an_unparseable_number_is_an_invalid_parameter(mocks: Mocks) -> None:
    client = sns(mocks)
    with pytest.raises(client.exceptions.InvalidParameterException) as refused:
        client.publish(PhoneNumber="13800000001", Message="x")
    assert error_of(refused) == ("InvalidParameter", 400)


def test_invalid_and_barred_numbers_are_invalid_parameters(mocks: Mocks, faults: Switch) -> None:
    faults(invalid_numbers=[TO], barred_numbers=["+8613900000002"])
    client = sns(mocks)
    with pytest.raises(client.exceptions.InvalidParameterException) as invalid:
        client.publish(PhoneNumber=TO, Message="x")
    with pytest.raises(client.exceptions.InvalidParameterException) as barred:
        client.publish(PhoneNumber="+8613900000002", Message="x")
    assert "is not valid to publish to" in str(invalid.value)
    assert "is opted out" in str(barred.value)


def test_an_outage_is_retried_by_botocore_then_raised(mocks: Mocks, faults: Switch) -> None:
    faults(outage=500)
    body = f"outage ref:{marker()}"
    before = call_count(mocks)
    with pytest.raises(ClientError) as down:
        sns(mocks, retries={"total_max_attempts": 3, "mode": "standard"}).publish(
            PhoneNumber=TO, Message=body)
    assert error_of(down) == ("InternalError", 500)
    assert calls_since(mocks, before) == ["refused"] * 3
    assert records(mocks, body) == []

    faults(outage=503)
    with pytest.raises(ClientError) as unavailable:
        sns(mocks).publish(PhoneNumber=TO, Message=body)
    assert error_of(unavailable) == ("ServiceUnavailable", 503)


def test_throttling_on_a_single_try_is_one_request(mocks: Mocks, faults: Switch) -> None:
    faults(throttle=True)
    before = call_count(mocks)
    with pytest.raises(ClientError) as throttled:
        sns(mocks).publish(PhoneNumber=TO, Message="x")
    assert error_of(throttled) == ("Throttling", 400)
    assert calls_since(mocks, before) == ["refused"]


def test_throttling_is_retried_by_botocore_and_each_try_reaches_the_mock(
        mocks: Mocks, faults: Switch) -> None:
    faults(throttle=True)
    before = call_count(mocks)
    with pytest.raises(ClientError) as throttled:
        sns(mocks, retries={"total_max_attempts": 3, "mode": "standard"}).publish(
            PhoneNumber=TO, Message="x")
    assert error_of(throttled) == ("Throttling", 400)
    assert throttled.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert calls_since(mocks, before) == ["refused"] * 3


def test_max_attempts_counts_retries_not_tries(mocks: Mocks, faults: Switch) -> None:
    # botocore's `max_attempts` is the number of retries; `total_max_attempts` counts the first.
    faults(throttle=True)
    before = call_count(mocks)
    with pytest.raises(ClientError):
        sns(mocks, retries={"max_attempts": 1, "mode": "standard"}).publish(
            PhoneNumber=TO, Message="x")
    assert calls_since(mocks, before) == ["refused"] * 2


def test_latency_is_seen_by_the_sdk(mocks: Mocks, faults: Switch) -> None:
    faults(latency=0.8)
    began = time.monotonic()
    answer = sns(mocks).publish(PhoneNumber=TO, Message=f"slow ref:{marker()}")
    assert time.monotonic() - began >= 0.8
    assert answer["MessageId"]


def test_a_dropped_publish_is_accepted_but_never_arrives(mocks: Mocks, faults: Switch) -> None:
    faults(drop=1.0)
    body = f"dropped ref:{marker()}"
    answer = sns(mocks).publish(PhoneNumber=TO, Message=body)
    [recorded] = records(mocks, body)
    assert recorded.message_id == answer["MessageId"]
    assert (recorded.handset, recorded.inbox_at) == ("dropped", None)


def test_a_lost_response_makes_botocore_send_the_message_again(
        mocks: Mocks, faults: Switch) -> None:
    faults(response_lost=1.0)
    body = f"lost ref:{marker()}"
    with pytest.raises(ConnectionClosedError):
        sns(mocks, retries={"total_max_attempts": 3, "mode": "standard"}).publish(
            PhoneNumber=TO, Message=body)
    copies = records(mocks, body)
    assert len(copies) == 3  # one message, three copies on the borrower's phone
    assert len({c.message_id for c in copies}) == 3  # each with its own MessageId
