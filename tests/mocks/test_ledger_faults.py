"""Data-sync faults of the ledger: the replica the change feed serves goes wrong, each fault
journals what it touched, and the truth (journal, primary record) stays true."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from mockkit import Mocks, Receiver, feed, feed_entries, primary, running_mocks, tick, wait_until

from harness.journal import (
    FaultTouched,
    MockFaultsChanged,
    ReminderChanged,
    ReminderScheduled,
    read_journal,
)
from mocks.bank import Changes


@pytest.fixture
def ledger(tmp_path: Path, reports: Receiver) -> Iterator[Mocks]:
    """A mock process of its own: faults must not leak into other tests."""
    with running_mocks(tmp_path, reports.url + "/unused") as served:
        yield served


def switch(client: httpx.Client, mocks: Mocks, **faults: Any) -> None:
    response = client.put(mocks.manifest.ledger_control_url, json=faults)
    assert response.status_code == 200, response.text


def touched(mocks: Mocks, switch: str) -> list[FaultTouched]:
    return [e for e in read_journal(mocks.journal_dir).of(FaultTouched) if e.switch == switch]


def truth(mocks: Mocks, reminder_id: str) -> ReminderScheduled:
    [event] = [e for e in read_journal(mocks.journal_dir).of(ReminderScheduled)
               if e.reminder_id == reminder_id]
    return event


def test_a_dropped_entry_never_reaches_the_feed(client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, drop=1.0)
    lost = tick(client, ledger)["reminder_id"]
    switch(client, ledger)
    kept = tick(client, ledger)["reminder_id"]

    assert [e["reminder_id"] for e in feed_entries(client, ledger)] == [kept]
    [event] = touched(ledger, "drop")
    assert (event.mock, event.subject, event.detail) == ("ledger", lost, {"version": 1})
    assert primary(client, ledger, lost)["version"] == 1  # the source has it
    assert truth(ledger, lost).ref == primary(client, ledger, lost)["ref"]


def test_a_duplicated_entry_appears_twice(client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, duplicate=1.0)
    doubled = tick(client, ledger)["reminder_id"]
    switch(client, ledger)
    single = tick(client, ledger)["reminder_id"]

    entries = feed_entries(client, ledger)
    assert [e["reminder_id"] for e in entries] == [doubled, doubled, single]
    assert entries[0] == entries[1]
    assert [(e.subject, e.detail) for e in touched(ledger, "duplicate")] == [
        (doubled, {"version": 1})]


@pytest.mark.parametrize("field", ["phone", "amount", "due_date"])
def test_drift_changes_one_field_of_the_replica_only(
        client: httpx.Client, ledger: Mocks, field: str) -> None:
    switch(client, ledger, drift=1.0, drift_field=field)
    reminder_id = tick(client, ledger)["reminder_id"]

    [entry] = feed_entries(client, ledger)
    record = primary(client, ledger, reminder_id)
    true = truth(ledger, reminder_id)
    replica = {"phone": entry["borrower"]["phone"], "amount": entry["installment"]["amount"],
               "due_date": entry["installment"]["due_date"]}
    source = {"phone": record["borrower"]["phone"], "amount": record["installment"]["amount"],
              "due_date": record["installment"]["due_date"]}
    assert source == {"phone": true.phone, "amount": true.amount, "due_date": true.due_date}
    assert replica == source | {field: replica[field]}
    assert replica[field] != source[field]
    # The replica is wrong, not newer.
    assert entry["version"] == record["version"] == 1
    [event] = touched(ledger, "drift")
    assert event.subject == reminder_id
    assert event.detail == {"version": 1, "field": field, "truth": source[field],
                            "replica": replica[field]}


def test_a_drifted_phone_is_a_number_no_borrower_had(client: httpx.Client, ledger: Mocks) -> None:
    for _ in range(20):
        tick(client, ledger)
    switch(client, ledger, drift=1.0, drift_field="phone")
    for _ in range(20):
        tick(client, ledger)

    drifted = {e.detail["replica"] for e in touched(ledger, "drift")}
    phones = {e.phone for e in read_journal(ledger.journal_dir).of(ReminderScheduled)}
    assert len(drifted) == 20
    assert not drifted & phones
    assert all(phone.startswith("+86") and len(phone) == 14 for phone in drifted)


def test_amount_and_due_date_drift_by_a_hundred_and_a_day(
        client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, drift=1.0, drift_field="amount")
    tick(client, ledger)
    switch(client, ledger, drift=1.0, drift_field="due_date")
    tick(client, ledger)

    amount, due = touched(ledger, "drift")
    assert float(amount.detail["replica"]) - float(amount.detail["truth"]) == pytest.approx(100)
    days = date.fromisoformat(due.detail["replica"]) - date.fromisoformat(due.detail["truth"])
    assert days.days == 1


def test_a_stale_replica_shows_entries_late_and_in_order(
        client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, lag=3.0)
    late = tick(client, ledger)["reminder_id"]
    switch(client, ledger)
    after = tick(client, ledger)["reminder_id"]

    # The first holds back the second, as in a log; the replica does not say more will come.
    assert feed(client, ledger) == {"changes": [], "next_cursor": 0, "has_more": False}
    assert primary(client, ledger, late)["version"] == 1  # the source has it already
    entries = wait_until(lambda: feed_entries(client, ledger), "the lagging entry", 10)
    assert [e["reminder_id"] for e in entries] == [late, after]
    assert [(e.subject, e.detail) for e in touched(ledger, "lag")] == [
        (late, {"version": 1, "lag": 3.0})]


def test_a_renamed_field_changes_the_feed_and_the_primary(
        client: httpx.Client, ledger: Mocks) -> None:
    reminder_id = tick(client, ledger)["reminder_id"]
    due_date = truth(ledger, reminder_id).due_date
    switch(client, ledger, schema_change="renamed_field")

    [entry] = feed_entries(client, ledger)
    record = primary(client, ledger, reminder_id)

    for served in (entry["installment"], record["installment"]):
        assert served["dueDate"] == due_date
        assert "due_date" not in served
    assert [(e.subject, e.detail) for e in touched(ledger, "schema_change")] == [
        ("", {"change": "renamed_field", "entries": 1}),
        (reminder_id, {"change": "renamed_field"})]


def test_a_date_format_change_writes_due_dates_day_first(
        client: httpx.Client, ledger: Mocks) -> None:
    reminder_id = tick(client, ledger)["reminder_id"]
    due_date = date.fromisoformat(truth(ledger, reminder_id).due_date)
    switch(client, ledger, schema_change="date_format")

    [entry] = feed_entries(client, ledger)
    record = primary(client, ledger, reminder_id)
    switch(client, ledger)

    day_first = f"{due_date.day:02d}/{due_date.month:02d}/{due_date.year}"
    assert entry["installment"]["due_date"] == record["installment"]["due_date"] == day_first
    assert feed_entries(client, ledger)[0]["installment"]["due_date"] == due_date.isoformat()
    assert len(touched(ledger, "schema_change")) == 2  # nothing once switched off


def test_an_empty_page_is_not_touched_by_a_schema_change(
        client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, schema_change="renamed_field")

    assert feed(client, ledger)["changes"] == []
    assert touched(ledger, "schema_change") == []


def test_switching_is_journaled_and_bad_faults_are_refused(
        client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, drop=0.5)
    client.delete(ledger.manifest.ledger_control_url)
    assert client.put(ledger.manifest.ledger_control_url, json={"drop": 2}).status_code == 400
    switched = read_journal(ledger.journal_dir).of(MockFaultsChanged)
    assert [(s.mock, s.faults) for s in switched] == [("ledger", {"drop": 0.5}), ("ledger", {})]


def test_a_dropped_cancellation_leaves_the_replica_stale_and_the_primary_true(
        client: httpx.Client, tmp_path: Path) -> None:
    # The repayment lands 0.4 to 1.2 s after scheduling, with the drop already in force.
    with running_mocks(tmp_path, "http://127.0.0.1:9/unused", lead=2.0,
                       changes=Changes(repaid=1.0)) as mocks:
        reminder_id = tick(client, mocks)["reminder_id"]
        switch(client, mocks, drop=1.0)

        wait_until(lambda: read_journal(mocks.journal_dir).of(ReminderChanged), "the repayment")

        assert [(e["version"], e["status"]) for e in feed_entries(client, mocks)] == [
            (1, "scheduled")]
        record = primary(client, mocks, reminder_id)
        assert (record["version"], record["status"]) == (2, "cancelled")
        assert [(e.subject, e.detail) for e in touched(mocks, "drop")] == [
            (reminder_id, {"version": 2})]
