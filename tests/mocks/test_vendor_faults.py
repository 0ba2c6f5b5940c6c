"""Vendor faults as a client sees them and as the record keeps them (Twilio as the example)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from mockkit import Mocks, Receiver, running_mocks, twilio_send, wait_until

from harness.journal import SendRecorded, read_journal

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
