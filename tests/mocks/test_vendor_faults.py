"""Vendor faults as a client sees them, as the record keeps them, and as the mocks journal what
each switch touched (Twilio as the example; Alibaba for multi-recipient sends)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from mockkit import (
    SIGN_NAME,
    Mocks,
    Receiver,
    aliyun_send,
    fault_switch,
    running_mocks,
    template_param,
    twilio_send,
    wait_until,
)

from harness.journal import FaultTouched, SendRecorded, read_journal

TO, FROM = "+8613800000001", "+15005550006"


@pytest.fixture
def fleet(tmp_path: Path, reports: Receiver) -> Iterator[Mocks]:
    with running_mocks(tmp_path, reports.url + "/unused") as served:
        yield served


def switch(client: httpx.Client, fleet: Mocks, **faults: Any) -> None:
    client.put(fleet.manifest.vendors["twilio"].control_url, json=faults).raise_for_status()


def send(client: httpx.Client, fleet: Mocks, callback: str = "", to: str = TO) -> httpx.Response:
    form = {"To": to, "From": FROM, "Body": "x"} | ({"StatusCallback": callback} if callback
                                                    else {})
    return twilio_send(client, fleet.manifest.vendors["twilio"], form)


def statuses(reports: Receiver, path: str) -> list[tuple[str, str]]:
    return [(p["MessageSid"], p["MessageStatus"]) for p in
            (dict(parse_qsl(r.body.decode())) for r in reports.on(path))]


def test_an_outage_answers_the_status_asked_for_and_records_nothing(
        client: httpx.Client, fleet: Mocks) -> None:
    switch(client, fleet, outage=503)
    answer = send(client, fleet)
    assert (answer.status_code, answer.json()["code"]) == (503, 20503)
    assert read_journal(fleet.journal_dir).of(SendRecorded) == []


def test_invalid_and_barred_numbers_are_refused_vendor_style(
        client: httpx.Client, fleet: Mocks) -> None:
    switch(client, fleet, invalid_numbers=[TO], barred_numbers=["+8613900000002"])
    assert send(client, fleet).json()["code"] == 21211
    assert send(client, fleet, to="+8613900000002").json()["code"] == 21610


def test_a_dropped_send_is_accepted_but_never_arrives_nor_reports(
        client: httpx.Client, fleet: Mocks, reports: Receiver) -> None:
    switch(client, fleet, drop=1.0)
    assert send(client, fleet, f"{reports.url}/drop").status_code == 201
    [recorded] = read_journal(fleet.journal_dir).of(SendRecorded)
    assert (recorded.handset, recorded.inbox_at) == ("dropped", None)
    send(client, fleet, f"{reports.url}/drop-control")  # still dropped: a report would be a bug
    switch(client, fleet)
    send(client, fleet, f"{reports.url}/drop-control")
    wait_until(lambda: len(reports.on("/drop-control")) == 2, "the report of the third send")
    assert reports.on("/drop") == []


def test_reports_can_be_duplicated_delayed_lost_and_reordered(
        client: httpx.Client, fleet: Mocks, reports: Receiver) -> None:
    switch(client, fleet, dlr_duplicate=1.0)
    send(client, fleet, f"{reports.url}/dup")
    twice = wait_until(lambda: statuses(reports, "/dup") if len(reports.on("/dup")) == 4
                       else None, "duplicated reports")
    assert sorted(s for _, s in twice) == ["delivered", "delivered", "sent", "sent"]

    switch(client, fleet, dlr_delay=1.5)
    began = time.monotonic()
    send(client, fleet, f"{reports.url}/late")
    wait_until(lambda: len(reports.on("/late")) == 2, "delayed reports", timeout=10)
    assert time.monotonic() - began >= 1.5

    switch(client, fleet, dlr_loss=1.0)
    send(client, fleet, f"{reports.url}/lost")
    switch(client, fleet)
    send(client, fleet, f"{reports.url}/lost-control")
    wait_until(lambda: len(reports.on("/lost-control")) == 2, "the control's reports")
    assert reports.on("/lost") == []

    switch(client, fleet, dlr_reorder=True, dlr_delay=1.0)
    sids = [send(client, fleet, f"{reports.url}/order").json()["sid"] for _ in range(6)]
    arrived = wait_until(lambda: statuses(reports, "/order") if len(reports.on("/order")) == 12
                         else None, "all reordered reports", timeout=10)
    firsts = [sid for sid, _ in arrived]
    assert sorted(set(firsts)) == sorted(sids)
    assert list(dict.fromkeys(firsts)) != sids  # not in the order sent (seeded shuffle)


# --- what each switch touched, as the mocks journal it ----------------------------------------

def touched(fleet: Mocks, vendor: str = "twilio") -> list[FaultTouched]:
    return [t for t in read_journal(fleet.journal_dir).of(FaultTouched) if t.mock == vendor]


def seen(fleet: Mocks) -> list[tuple[str, str, dict[str, Any]]]:
    return [(t.switch, t.subject, t.detail) for t in touched(fleet)]


def sids(fleet: Mocks) -> list[str]:
    return [s.message_id for s in read_journal(fleet.journal_dir).of(SendRecorded)]


def test_with_every_switch_off_nothing_is_touched(client: httpx.Client, fleet: Mocks,
                                                   reports: Receiver) -> None:
    send(client, fleet, f"{reports.url}/clean")
    send(client, fleet, to="+1")  # refused for its own fault, not a switch's
    reports.wait_for("/clean", 2)
    assert touched(fleet) == []


def test_delayed_and_refused_calls_are_touched_once_each(client: httpx.Client,
                                                          fleet: Mocks) -> None:
    switch(client, fleet, latency=0.1, throttle=True)
    send(client, fleet)
    assert seen(fleet) == [("latency", "", {"seconds": 0.1}), ("throttle", "", {})]
    switch(client, fleet, outage=500)
    send(client, fleet)
    assert seen(fleet)[2:] == [("outage", "", {"status": 500})]


def test_each_refused_recipient_is_touched_once(client: httpx.Client, fleet: Mocks) -> None:
    switch(client, fleet, invalid_numbers=[TO], barred_numbers=["+8613900000002"])
    send(client, fleet)
    send(client, fleet, to="+8613900000002")
    send(client, fleet, to="+8613900000003")
    assert seen(fleet) == [("invalid_numbers", "", {"to": TO}),
                           ("barred_numbers", "", {"to": "+8613900000002"})]


def test_a_dropped_send_and_a_lost_answer_name_the_message(client: httpx.Client,
                                                           fleet: Mocks) -> None:
    switch(client, fleet, drop=1.0)
    send(client, fleet)
    switch(client, fleet, response_lost=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        send(client, fleet)
    dropped, lost = sids(fleet)
    assert seen(fleet) == [("drop", dropped, {"to": TO}), ("response_lost", lost, {"to": TO})]


def test_reports_held_back_lost_or_doubled_name_their_message(
        client: httpx.Client, fleet: Mocks, reports: Receiver) -> None:
    switch(client, fleet, dlr_loss=1.0)
    send(client, fleet, f"{reports.url}/t-lost")
    switch(client, fleet, dlr_delay=0.2, dlr_duplicate=1.0)
    send(client, fleet, f"{reports.url}/t-late")
    lost, late = sids(fleet)
    assert seen(fleet) == [("dlr_loss", lost, {}), ("dlr_delay", late, {"seconds": 0.2}),
                           ("dlr_duplicate", late, {})]


def test_a_reordered_batch_is_touched_with_its_size(client: httpx.Client, fleet: Mocks,
                                                    reports: Receiver) -> None:
    switch(client, fleet, dlr_reorder=True, dlr_delay=1.0)
    for _ in range(3):
        send(client, fleet, f"{reports.url}/t-order")
    reports.wait_for("/t-order", 6)
    batches = [t for t in touched(fleet) if t.switch == "dlr_reorder"]
    # The three fall due within one or two of the queue's ticks; a batch of one is never
    # shuffled, so at least one batch of two or three was.
    assert batches and all(t.subject == "" and t.detail["reports"] >= 2 for t in batches)
    assert sum(t.detail["reports"] for t in batches) <= 3


def test_each_failed_recipient_of_a_multi_recipient_send_is_touched(
        client: httpx.Client, fleet: Mocks) -> None:
    aliyun = fleet.manifest.vendors["aliyun"]
    with fault_switch(fleet, "aliyun") as put:
        put(partial=1.0)
        answer = aliyun_send(client, aliyun, {
            "PhoneNumbers": "13800000001,13800000002", "SignName": SIGN_NAME,
            "TemplateCode": "SMS_T1",
            "TemplateParam": template_param(name="王秀英", amount="5234.00", ref="R1")})
    assert answer.json()["Code"] == "isp.SYSTEM_ERROR"
    assert [(t.switch, t.subject, t.detail) for t in touched(fleet, "aliyun")] == [
        ("partial", "", {"to": "+8613800000001", "recipients": 2}),
        ("partial", "", {"to": "+8613800000002", "recipients": 2})]
