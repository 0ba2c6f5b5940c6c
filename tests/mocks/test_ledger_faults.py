"""Data-sync faults of the ledger: the replica the pull API serves drifts; the truth stays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mockkit import Mocks, Receiver, running_mocks, wait_until
from test_mock_ledger import add, installment, page

from harness.journal import MockFaultsChanged, ReminderOwed, read_journal


@pytest.fixture
def ledger(tmp_path: Path, reports: Receiver) -> Iterator[Mocks]:
    """A mock process of its own: faults must not leak into other tests."""
    with running_mocks(tmp_path, reports.url + "/unused") as served:
        yield served


def switch(client: httpx.Client, mocks: Mocks, **faults: Any) -> None:
    response = client.put(mocks.manifest.ledger_control_url, json=faults)
    assert response.status_code == 200, response.text


def served_after(client: httpx.Client, mocks: Mocks, cursor: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page(client, mocks, cursor=cursor, limit=500)["reminders"]
    return rows


def test_dropped_and_duplicated_rows_differ_from_the_truth(
        client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, drop=1.0)
    add(client, ledger, installment(1))
    switch(client, ledger, duplicate=1.0)
    second = add(client, ledger, installment(2))
    rows = served_after(client, ledger, 0)
    assert [row["reminder_id"] for row in rows] == [second["reminder_id"]] * 2
    assert len(read_journal(ledger.journal_dir).of(ReminderOwed)) == 2  # the truth has both


def test_drift_changes_the_replica_only(client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, drift=1.0, drift_field="phone")
    add(client, ledger, installment(1))
    switch(client, ledger, drift=1.0, drift_field="amount")
    add(client, ledger, installment(2))
    phone_row, amount_row = served_after(client, ledger, 0)
    assert phone_row["borrower"]["phone"] != "+8613912345678"
    assert phone_row["borrower"]["phone"][:-4] == "+8613912345678"[:-4]
    assert amount_row["installment"]["amount"] == "5334.00"
    truth = read_journal(ledger.journal_dir).of(ReminderOwed)
    assert [(r.phone, r.amount) for r in truth] == [("+8613912345678", "5234.00")] * 2


def test_a_stale_replica_shows_reminders_late_and_in_order(
        client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, lag=1.0)
    created = add(client, ledger, installment(1))
    switch(client, ledger)
    add(client, ledger, installment(2))
    assert served_after(client, ledger, 0) == []  # the first blocks the second, as in a log
    rows = wait_until(lambda: served_after(client, ledger, 0), "the lagging reminder", 5)
    assert rows[0]["reminder_id"] == created["reminder_id"]


def test_a_schema_change_renames_the_due_date_or_changes_its_format(
        client: httpx.Client, ledger: Mocks) -> None:
    add(client, ledger, installment(1))
    switch(client, ledger, schema_change="renamed_field")
    assert served_after(client, ledger, 0)[0]["installment"]["dueDate"] == "2026-12-05"
    switch(client, ledger, schema_change="date_format")
    assert served_after(client, ledger, 0)[0]["installment"]["due_date"] == "05/12/2026"


def test_switching_is_journaled_and_bad_faults_are_refused(
        client: httpx.Client, ledger: Mocks) -> None:
    switch(client, ledger, drop=0.5)
    client.delete(ledger.manifest.ledger_control_url)
    assert client.put(ledger.manifest.ledger_control_url, json={"drop": 2}).status_code == 400
    switched = read_journal(ledger.journal_dir).of(MockFaultsChanged)
    assert [(s.mock, s.faults) for s in switched] == [("ledger", {"drop": 0.5}), ("ledger", {})]
