"""The borrower app's API of the ledger (with `MocksConfig.app`): the next installment as the
core system holds it now, and the app's reminder setting, whose opt-out is the bank's own and a
STOP too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mockkit import (
    REPORT_PATH,
    Mocks,
    Receiver,
    feed_entries,
    primary,
    running_mocks,
    tick,
    wait_until,
)

from harness.journal import (
    BorrowerChanged,
    BorrowerOptedOut,
    Journal,
    ReminderChanged,
    read_journal,
)
from mocks.bank import Changes, Population

LEAD = 0.5  # remind_at comes soon: an opt-out in the app may come after it


@pytest.fixture(scope="module")
def app_mocks(tmp_path_factory: pytest.TempPathFactory, reports: Receiver) -> Iterator[Mocks]:
    """Two borrowers, so that each has several reminders."""
    with running_mocks(tmp_path_factory.mktemp("app"), reports.url + REPORT_PATH, lead=LEAD,
                       population=Population(borrowers=2), app=True) as served:
        yield served


def journal(mocks: Mocks) -> Journal:
    return read_journal(mocks.journal_dir)


def view(client: httpx.Client, mocks: Mocks, borrower_id: str) -> dict[str, Any]:
    response = client.get(f"{mocks.manifest.ledger_url}/v1/app/borrowers/{borrower_id}/"
                          "installment")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def choose(client: httpx.Client, mocks: Mocks, borrower_id: str,
           content: bytes) -> httpx.Response:
    return client.put(f"{mocks.manifest.ledger_url}/v1/app/borrowers/{borrower_id}/preferences",
                      content=content, headers={"Content-Type": "application/json"})


def borrower_of(client: httpx.Client, mocks: Mocks, reminder_id: str) -> str:
    found: str = primary(client, mocks, reminder_id)["borrower"]["borrower_id"]
    return found


def test_without_app_the_ledger_serves_no_app_api(client: httpx.Client, mocks: Mocks) -> None:
    created = tick(client, mocks)
    borrower_id = borrower_of(client, mocks, created["reminder_id"])

    response = client.get(f"{mocks.manifest.ledger_url}/v1/app/borrowers/{borrower_id}/"
                          "installment")

    assert response.status_code == 404


def test_an_unknown_borrower_is_404_without_a_token(app_mocks: Mocks) -> None:
    # The app's API is public: borrowers use it, and they have no run token.
    with httpx.Client(timeout=5.0) as anonymous:
        url = f"{app_mocks.manifest.ledger_url}/v1/app/borrowers"
        answers = [anonymous.get(f"{url}/B000003/installment"),
                   anonymous.get(f"{url}/T00001/installment"),
                   anonymous.put(f"{url}/B000003/preferences", json={"reminders": False})]

    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert answers[0].json() == {"error": "no borrower 'B000003'"}


def test_the_view_is_the_borrowers_latest_reminder_as_the_primary_holds_it(
        client: httpx.Client, app_mocks: Mocks) -> None:
    latest: dict[str, str] = {}
    for _ in range(6):
        reminder_id = tick(client, app_mocks)["reminder_id"]
        latest[borrower_of(client, app_mocks, reminder_id)] = reminder_id

    for borrower_id, reminder_id in latest.items():
        record = primary(client, app_mocks, reminder_id)
        assert view(client, app_mocks, borrower_id) == {
            "borrower_id": borrower_id, "reminder_id": reminder_id,
            "amount": record["installment"]["amount"],
            "due_date": record["installment"]["due_date"], "currency": "CNY"}


def test_repayments_change_the_view_as_they_happen(tmp_path: Path, client: httpx.Client) -> None:
    # Seed 20 plans (one borrower, lead 10 s): the first reminder partly repaid 6.0 s after
    # it is scheduled, the second repaid in full after 3.5 s.
    with running_mocks(tmp_path, "http://127.0.0.1:9/unused", seed=20, lead=10.0,
                       population=Population(borrowers=1), app=True,
                       changes=Changes(repaid=0.5, partially_repaid=0.5)) as mocks:
        first = tick(client, mocks)["reminder_id"]
        second = tick(client, mocks)["reminder_id"]
        borrower_id = borrower_of(client, mocks, first)
        amount = primary(client, mocks, first)["installment"]["amount"]

        assert view(client, mocks, borrower_id)["reminder_id"] == second

        def changed(reminder_id: str) -> ReminderChanged | None:
            return next((event for event in journal(mocks).of(ReminderChanged)
                         if event.reminder_id == reminder_id), None)

        repaid = wait_until(lambda: changed(second), "the second reminder's repayment")
        assert repaid.change == "repaid"
        after_repayment = view(client, mocks, borrower_id)
        assert changed(first) is None, "the first one's change came too soon to tell"
        assert (after_repayment["reminder_id"], after_repayment["amount"]) == (first, amount)

        partial = wait_until(lambda: changed(first), "the first reminder's partial repayment")
        assert partial.change == "partially_repaid"
        assert view(client, mocks, borrower_id) == {
            "borrower_id": borrower_id, "reminder_id": first, "amount": partial.amount,
            "due_date": primary(client, mocks, first)["installment"]["due_date"],
            "currency": "CNY"}


def test_an_opt_out_in_the_app_is_the_banks_own_and_a_stop(
        client: httpx.Client, app_mocks: Mocks) -> None:
    reminder_id = tick(client, app_mocks)["reminder_id"]
    borrower_id = borrower_of(client, app_mocks, reminder_id)
    record = primary(client, app_mocks, reminder_id)
    # After every remind_at of theirs: a planned change could not happen now, the app's can.
    remind_at = datetime.fromisoformat(record["remind_at"]).timestamp()
    wait_until(lambda: time.time() > remind_at + 0.1, "the reminder's remind_at to pass")
    theirs = [e["reminder_id"] for e in feed_entries(client, app_mocks)
              if e["borrower"]["borrower_id"] == borrower_id and e["version"] == 1]
    before = {rid: primary(client, app_mocks, rid)["version"] for rid in theirs}

    answer = choose(client, app_mocks, borrower_id, b'{"reminders": false}')

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"borrower_id": borrower_id, "reminders": False}
    events = journal(app_mocks)
    [changed] = [e for e in events.of(BorrowerChanged) if e.borrower_id == borrower_id]
    [stop] = [e for e in events.of(BorrowerOptedOut) if e.phone == record["borrower"]["phone"]]
    assert changed.opted_out is True
    assert (stop.vendor, stop.t) == ("app", changed.t)
    for rid, version in before.items():
        now = primary(client, app_mocks, rid)
        assert (now["version"], now["borrower"]["opted_out"]) == (version + 1, True)
        [entry] = [e for e in feed_entries(client, app_mocks)
                   if e["reminder_id"] == rid and e["version"] == version + 1]
        assert entry["borrower"]["opted_out"] is True
    # Opted out of reminders, the borrower still sees their installment.
    assert view(client, app_mocks, borrower_id)["reminder_id"] == theirs[-1]

    again = choose(client, app_mocks, borrower_id, b'{"reminders": false}')
    back_in = choose(client, app_mocks, borrower_id, b'{"reminders": true}')

    assert (again.status_code, back_in.status_code) == (200, 200)
    events = journal(app_mocks)
    assert [e.opted_out for e in events.of(BorrowerChanged)
            if e.borrower_id == borrower_id] == [True, False]
    assert [e.phone for e in events.of(BorrowerOptedOut)] == [stop.phone]
    assert primary(client, app_mocks, reminder_id)["borrower"]["opted_out"] is False


@pytest.mark.parametrize("content", [b"", b"{}", b"junk", b"[false]", b'{"reminders": "no"}',
                                     b'{"reminders": 0}', b'{"reminders": false, "sms": true}'])
def test_preferences_take_a_boolean_and_nothing_else(
        client: httpx.Client, app_mocks: Mocks, content: bytes) -> None:
    borrower_id = borrower_of(client, app_mocks, tick(client, app_mocks)["reminder_id"])
    changes = len(journal(app_mocks).of(BorrowerChanged))

    answer = choose(client, app_mocks, borrower_id, content)

    assert answer.status_code == 400
    assert answer.json() == {
        "error": 'preferences: expected {"reminders": true} or {"reminders": false}'}
    assert len(journal(app_mocks).of(BorrowerChanged)) == changes
