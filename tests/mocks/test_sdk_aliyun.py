"""The official Alibaba Cloud SDK against the Dysmsapi mock, unchanged but for its endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from alibabacloud_dysmsapi20170525 import models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from alibabacloud_tea_openapi.models import Config
from darabonba.exceptions import UnretryableException
from mockkit import (
    REPORT_PATH,
    SIGN_NAME,
    Mocks,
    Receiver,
    Switch,
    fault_switch,
    marker,
    wait_until,
)

from harness.journal import SendRecorded, read_journal

PHONE = "13800000001"


def sdk(mocks: Mocks, secret: str | None = None, algorithm: str | None = None) -> Client:
    """The SDK client; `algorithm="v2"` switches it to the legacy RPC (V1, HMAC-SHA1) signature."""
    vendor = mocks.manifest.vendors["aliyun"]
    return Client(Config(access_key_id=vendor.credentials["access_key_id"],
                         access_key_secret=secret or vendor.credentials["access_key_secret"],
                         endpoint=urlsplit(vendor.url).netloc, protocol="HTTP",
                         signature_algorithm=algorithm))


def request(out_id: str, template: str = "SMS_T1", phones: str = PHONE) -> models.SendSmsRequest:
    return models.SendSmsRequest(
        phone_numbers=phones, sign_name=SIGN_NAME, template_code=template,
        template_param=json.dumps({"name": "王伟", "amount": "1.00", "ref": out_id}),
        out_id=out_id)


def recorded(mocks: Mocks, out_id: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded) if s.client_ref == out_id]


def receipts(reports: Receiver, out_id: str) -> list[dict[str, Any]]:
    """The SmsReport receipts about `out_id` that reached the receiver, in arrival order."""
    return [receipt for push in reports.on(REPORT_PATH) for receipt in json.loads(push.body)
            if receipt["out_id"] == out_id]


def wait_for_receipts(reports: Receiver, out_id: str, count: int,
                      timeout: float = 10.0) -> list[dict[str, Any]]:
    return wait_until(lambda: receipts(reports, out_id)
                      if len(receipts(reports, out_id)) >= count else None,
                      f"{count} receipt(s) for {out_id}", timeout)


@pytest.fixture
def faults(mocks: Mocks) -> Iterator[Switch]:
    with fault_switch(mocks, "aliyun") as switch:
        yield switch


def test_the_sdk_sends_with_its_default_signature_and_the_mock_records_it(mocks: Mocks) -> None:
    out_id = marker()
    answer = sdk(mocks).send_sms(request(out_id))
    assert (answer.status_code, answer.body.code) == (200, "OK")
    sends = recorded(mocks, out_id)
    assert [(s.to, s.message_id) for s in sends] == [("+8613800000001", answer.body.biz_id)]
    assert sends[0].request["headers"]["Authorization"].startswith("ACS3-HMAC-SHA256 ")


def test_the_sdk_switched_to_the_v1_rpc_signature_is_verified_too(mocks: Mocks) -> None:
    out_id = marker()
    answer = sdk(mocks, algorithm="v2").send_sms(request(out_id))
    assert (answer.status_code, answer.body.code) == (200, "OK")
    [send] = recorded(mocks, out_id)
    query = parse_qs(str(send.request["query"]))
    assert (query["SignatureMethod"], query["SignatureVersion"]) == (["HMAC-SHA1"], ["1.0"])
    assert "Authorization" not in send.request["headers"]


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["v3", "v1"])
def test_a_wrong_secret_is_refused_the_alibaba_way(mocks: Mocks, algorithm: str | None) -> None:
    out_id = marker()
    with pytest.raises(ClientException) as refused:
        sdk(mocks, secret="not-the-secret", algorithm=algorithm).send_sms(request(out_id))
    assert (refused.value.code, refused.value.status_code) == ("SignatureDoesNotMatch", 400)
    assert recorded(mocks, out_id) == []


def test_a_business_error_comes_inside_http_200(mocks: Mocks) -> None:
    answer = sdk(mocks).send_sms(request(marker(), template="SMS_UNKNOWN"))
    assert (answer.status_code, answer.body.code) == (200, "isv.SMS_TEMPLATE_ILLEGAL")


def test_the_receipt_is_pushed_as_a_json_array(mocks: Mocks, reports: Receiver) -> None:
    out_id = marker()
    answer = sdk(mocks).send_sms(request(out_id))
    [receipt] = wait_for_receipts(reports, out_id, 1)
    push = next(p for p in reports.on(REPORT_PATH) if receipt in json.loads(p.body))
    assert push.headers["Content-Type"].startswith("application/json")
    assert isinstance(json.loads(push.body), list)
    assert (receipt["biz_id"], receipt["phone_number"], receipt["success"],
            receipt["err_code"]) == (answer.body.biz_id, PHONE, True, "DELIVERED")


@pytest.mark.parametrize(("status", "code"), [(503, "ServiceUnavailable"),
                                              (500, "InternalError")])
def test_an_outage_is_a_server_exception(mocks: Mocks, faults: Switch, status: int,
                                         code: str) -> None:
    faults(outage=status)
    out_id = marker()
    with pytest.raises(ServerException) as down:
        sdk(mocks).send_sms(request(out_id))
    assert (down.value.status_code, down.value.code) == (status, code)
    assert recorded(mocks, out_id) == []


def test_throttling_is_a_business_limit_inside_http_200(mocks: Mocks, faults: Switch) -> None:
    faults(throttle=True)
    out_id = marker()
    answer = sdk(mocks).send_sms(request(out_id))
    assert (answer.status_code, answer.body.code) == (200, "isv.BUSINESS_LIMIT_CONTROL")
    assert recorded(mocks, out_id) == []


def test_invalid_and_barred_numbers_are_business_errors(mocks: Mocks, faults: Switch) -> None:
    faults(invalid_numbers=["+8613800000001"], barred_numbers=["+8613900000002"])
    client = sdk(mocks)
    assert client.send_sms(request(marker())).body.code == "isv.MOBILE_NUMBER_ILLEGAL"
    barred = client.send_sms(request(marker(), phones="13900000002"))
    assert barred.body.code == "isv.BLACK_KEY_CONTROL_LIMIT"


def test_a_partial_failure_refuses_the_whole_multi_recipient_send(
        mocks: Mocks, faults: Switch) -> None:
    faults(partial=1.0)
    client = sdk(mocks)
    several, alone = marker(), marker()
    refused = client.send_sms(request(several, phones="13800000001,13800000002"))
    assert (refused.status_code, refused.body.code) == (200, "isp.SYSTEM_ERROR")
    assert recorded(mocks, several) == []
    assert client.send_sms(request(alone)).body.code == "OK"  # one recipient is not partial

    faults()
    together = marker()
    answer = client.send_sms(request(together, phones="13800000001,+8613800000002"))
    assert answer.body.code == "OK"
    assert sorted((s.to, s.message_id) for s in recorded(mocks, together)) == [
        ("+8613800000001", answer.body.biz_id), ("+8613800000002", answer.body.biz_id)]


def test_latency_is_seen_by_the_sdk(mocks: Mocks, faults: Switch) -> None:
    faults(latency=0.8)
    began = time.monotonic()
    answer = sdk(mocks).send_sms(request(marker()))
    assert time.monotonic() - began >= 0.8
    assert answer.body.code == "OK"


def test_a_dropped_send_is_accepted_but_never_arrives_nor_reports(
        mocks: Mocks, faults: Switch, reports: Receiver) -> None:
    faults(drop=1.0)
    dropped = marker()
    assert sdk(mocks).send_sms(request(dropped)).body.code == "OK"
    [send] = recorded(mocks, dropped)
    assert (send.handset, send.inbox_at) == ("dropped", None)
    faults()
    control = marker()
    sdk(mocks).send_sms(request(control))
    wait_for_receipts(reports, control, 1)
    assert receipts(reports, dropped) == []


def test_a_lost_response_is_not_retried_by_the_sdk(mocks: Mocks, faults: Switch) -> None:
    faults(response_lost=1.0)
    out_id = marker()
    with pytest.raises(UnretryableException) as lost:
        sdk(mocks).send_sms(request(out_id))
    assert "Remote end closed connection" in str(lost.value.inner_exception)
    assert len(recorded(mocks, out_id)) == 1  # sent once; the notifier cannot know it was


def test_receipts_can_be_duplicated(mocks: Mocks, faults: Switch, reports: Receiver) -> None:
    faults(dlr_duplicate=1.0)
    out_id = marker()
    answer = sdk(mocks).send_sms(request(out_id))
    twice = wait_for_receipts(reports, out_id, 2)
    assert [r["biz_id"] for r in twice] == [answer.body.biz_id] * 2


def test_receipts_can_be_delayed(mocks: Mocks, faults: Switch, reports: Receiver) -> None:
    faults(dlr_delay=2.0)
    out_id = marker()
    began = time.monotonic()
    sdk(mocks).send_sms(request(out_id))
    wait_for_receipts(reports, out_id, 1)
    assert time.monotonic() - began >= 2.0


def test_receipts_can_be_lost(mocks: Mocks, faults: Switch, reports: Receiver) -> None:
    faults(dlr_loss=1.0)
    lost = marker()
    sdk(mocks).send_sms(request(lost))
    faults()
    control = marker()
    sdk(mocks).send_sms(request(control))
    wait_for_receipts(reports, control, 1)
    assert receipts(reports, lost) == []


def test_receipts_can_be_reordered(mocks: Mocks, faults: Switch, reports: Receiver) -> None:
    faults(dlr_reorder=True)
    out_id = marker()
    phones = [f"1380000{n:04d}" for n in range(8)]
    sdk(mocks).send_sms(request(out_id, phones=",".join(phones)))
    arrived = [r["phone_number"] for r in wait_for_receipts(reports, out_id, len(phones))]
    assert sorted(arrived) == phones
    assert arrived != phones  # one push of eight, shuffled (1 in 40320 to come back in order)


@pytest.mark.parametrize("algorithm", [None, "v2"])
def test_the_sdk_queries_a_numbers_sends_of_a_day(mocks: Mocks, algorithm: str | None) -> None:
    client = sdk(mocks, algorithm=algorithm)
    phone = f"139{int(marker(), 16) % 10**8:08d}"  # a number of its own: other tests send too
    refs = [marker() for _ in range(3)]
    biz_ids = [client.send_sms(request(ref, phones=phone)).body.biz_id for ref in refs]
    today = time.strftime("%Y%m%d", time.gmtime(time.time() + 8 * 3600))

    def query(page: int, **extra: str) -> models.QuerySendDetailsResponseBody:
        return client.query_send_details(models.QuerySendDetailsRequest(
            **{"phone_number": phone, "send_date": today, "page_size": 2, "current_page": page,
               **extra})).body

    first, second = query(1), query(2)
    assert (first.code, first.total_count) == ("OK", 3)
    details = [*first.sms_send_detail_dtos.sms_send_detail_dto,
               *second.sms_send_detail_dtos.sms_send_detail_dto]
    assert [d.out_id for d in details] == refs[::-1]
    assert {(d.phone_num, d.send_status, d.err_code, d.template_code) for d in details} == {
        (phone, 3, "DELIVERED", "SMS_T1")}
    assert refs[0] in details[-1].content
    [only] = query(1, biz_id=biz_ids[1]).sms_send_detail_dtos.sms_send_detail_dto
    assert only.out_id == refs[1]
    assert query(1, send_date="20000101").total_count == 0
