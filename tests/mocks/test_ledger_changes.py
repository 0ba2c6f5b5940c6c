"""The ledger's changing truth: repayments, phone changes, opt-outs and opt-ins happen before
remind_at, are journaled, and reach the change feed and the primary record as new versions;
the same seed and the same number of ticks give the same reminders and changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from mockkit import Mocks, feed_entries, primary, running_mocks, tick, wait_until

from harness.journal import (
    BorrowerChanged,
    Journal,
    ReminderChanged,
    ReminderScheduled,
    read_journal,
)
from mocks.bank import Changes, Population

LEAD = 2.0  # changes happen 0.4 to 1.2 s after scheduling
SHANGHAI = timezone(timedelta(hours=8))


@contextmanager
def bank(tmp_path: Path, changes: Changes, *, borrowers: int = 1, opted_out: float = 0.0,
         seed: int = 7) -> Iterator[Mocks]:
    with running_mocks(tmp_path, "http://127.0.0.1:9/unused", seed=seed, lead=LEAD,
                       population=Population(borrowers=borrowers, opted_out=opted_out),
                       changes=changes) as served:
        yield served


def journal(mocks: Mocks) -> Journal:
    return read_journal(mocks.journal_dir)


def versions(client: httpx.Client, mocks: Mocks, reminder_id: str) -> list[dict[str, Any]]:
    return [e for e in feed_entries(client, mocks) if e["reminder_id"] == reminder_id]


def wait_for_version(client: httpx.Client, mocks: Mocks, reminder_id: str,
                     version: int) -> list[dict[str, Any]]:
    return wait_until(
        lambda: (found := versions(client, mocks, reminder_id))
        and found[-1]["version"] >= version and found,
        f"version {version} of {reminder_id} in the feed")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def assert_before_remind_at(change_t: float, truth: ReminderScheduled) -> None:
    """A change lands 20 % to 60 % of the lead after scheduling (timers may fire a little late,
    never early)."""
    assert truth.t + 0.2 * LEAD - 0.001 <= change_t < truth.remind_at


def test_a_repayment_cancels_the_reminder(client: httpx.Client, tmp_path: Path) -> None:
    with bank(tmp_path, Changes(repaid=1.0)) as mocks:
        reminder_id = tick(client, mocks)["reminder_id"]

        first, second = wait_for_version(client, mocks, reminder_id, 2)

        assert (first["version"], first["status"]) == (1, "scheduled")
        assert (second["version"], second["status"]) == (2, "cancelled")
        assert second["installment"]["amount"] == "0.00"
        assert primary(client, mocks, reminder_id) == second
        [changed] = journal(mocks).of(ReminderChanged)
        assert (changed.reminder_id, changed.change, changed.amount) == (
            reminder_id, "repaid", "0.00")
        # The journal's time of a change is the new version's as_of.
        assert changed.t == epoch(second["as_of"])
        [truth] = journal(mocks).of(ReminderScheduled)
        assert_before_remind_at(changed.t, truth)


def test_a_partial_repayment_lowers_the_amount_due(client: httpx.Client, tmp_path: Path) -> None:
    with bank(tmp_path, Changes(partially_repaid=1.0)) as mocks:
        reminder_id = tick(client, mocks)["reminder_id"]

        first, second = wait_for_version(client, mocks, reminder_id, 2)

        before = Decimal(first["installment"]["amount"])
        after = Decimal(second["installment"]["amount"])
        assert second["status"] == "scheduled"
        assert before * Decimal("0.1") - Decimal("0.01") <= after
        assert after <= before * Decimal("0.9") + Decimal("0.01")
        assert second["installment"]["amount"] == f"{after:.2f}"
        assert primary(client, mocks, reminder_id)["installment"]["amount"] == f"{after:.2f}"
        [changed] = journal(mocks).of(ReminderChanged)
        assert (changed.change, changed.amount) == ("partially_repaid", f"{after:.2f}")
        assert changed.t == epoch(second["as_of"])


def test_a_phone_change_reaches_every_reminder_of_the_borrower(
        client: httpx.Client, tmp_path: Path) -> None:
    # One borrower: both reminders are theirs, and each draws a phone change.
    with bank(tmp_path, Changes(phone_changed=1.0)) as mocks:
        first_id = tick(client, mocks)["reminder_id"]
        second_id = tick(client, mocks)["reminder_id"]

        wait_until(lambda: len(journal(mocks).of(BorrowerChanged)) == 2, "two phone changes")
        wait_for_version(client, mocks, second_id, 3)

        [truth, _] = journal(mocks).of(ReminderScheduled)
        new, newer = journal(mocks).of(BorrowerChanged)
        assert len({truth.phone, new.phone, newer.phone}) == 3
        assert new.borrower_id == newer.borrower_id == truth.borrower_id
        assert newer.t > new.t  # in the order they were drawn
        for reminder_id in (first_id, second_id):
            entries = versions(client, mocks, reminder_id)
            assert [(e["version"], e["borrower"]["phone"]) for e in entries] == [
                (1, truth.phone), (2, new.phone), (3, newer.phone)]
            assert [epoch(e["as_of"]) for e in entries[1:]] == [new.t, newer.t]
            assert primary(client, mocks, reminder_id) == entries[-1]


def test_an_opt_out_at_the_bank_then_an_opt_in(client: httpx.Client, tmp_path: Path) -> None:
    # The first reminder draws the opt-out; the second, scheduled while the borrower is to be
    # opted out, draws the opt-in, which comes after it.
    with bank(tmp_path, Changes(opted_out=1.0, opted_in=1.0)) as mocks:
        first_id = tick(client, mocks)["reminder_id"]
        tick(client, mocks)

        wait_until(lambda: len(journal(mocks).of(BorrowerChanged)) == 2, "opt-out and opt-in")
        wait_for_version(client, mocks, first_id, 3)

        out, back = journal(mocks).of(BorrowerChanged)
        assert (out.opted_out, back.opted_out) == (True, False)
        entries = versions(client, mocks, first_id)
        assert [e["borrower"]["opted_out"] for e in entries] == [False, True, False]
        assert [e["status"] for e in entries] == ["scheduled"] * 3


def test_a_borrower_opted_out_from_the_start_is_scheduled_with_their_consent(
        client: httpx.Client, tmp_path: Path) -> None:
    with bank(tmp_path, Changes(opted_in=1.0), opted_out=1.0) as mocks:
        reminder_id = tick(client, mocks)["reminder_id"]

        first, second = wait_for_version(client, mocks, reminder_id, 2)

        [truth] = journal(mocks).of(ReminderScheduled)
        assert truth.opted_out is True
        assert (first["borrower"]["opted_out"], second["borrower"]["opted_out"]) == (True, False)
        [back] = journal(mocks).of(BorrowerChanged)
        assert (back.borrower_id, back.opted_out, back.phone) == (
            truth.borrower_id, False, truth.phone)


def _story(client: httpx.Client, tmp_path: Path, seed: int) -> tuple[object, ...]:
    """Twenty ticks on a small bank with every kind of change; what was scheduled and changed,
    without the times."""
    changes = Changes(repaid=0.2, partially_repaid=0.2, phone_changed=0.3, opted_out=0.3,
                      opted_in=0.5)
    tmp_path.mkdir()
    with bank(tmp_path, changes, borrowers=4, opted_out=0.25, seed=seed) as mocks:
        for _ in range(20):
            tick(client, mocks)
            time.sleep(0.01)  # spread the ticks, so their timers interleave
        last = journal(mocks).of(ReminderScheduled)[-1]
        wait_until(lambda: time.time() > last.remind_at + 0.2, "every change's time to pass")
        events = journal(mocks)
    scheduled = [(e.reminder_id, e.ref, e.borrower_id, e.name, e.amount,
                  (date.fromisoformat(e.due_date)
                   - datetime.fromtimestamp(e.t, SHANGHAI).date()).days)
                 for e in events.of(ReminderScheduled)]
    repayments = sorted((e.reminder_id, e.change, e.amount) for e in events.of(ReminderChanged))
    borrowers = sorted((e.borrower_id, e.seq, e.phone, e.opted_out)
                       for e in events.of(BorrowerChanged))
    # Per borrower, in order; the seq only orders them (it counts every event of the source).
    per_borrower = [(b, phone, out) for b, _, phone, out in borrowers]
    return tuple(scheduled), tuple(repayments), tuple(per_borrower)


def test_the_same_seed_and_ticks_give_the_same_reminders_and_changes(
        client: httpx.Client, tmp_path: Path) -> None:
    first = _story(client, tmp_path / "a", seed=11)
    again = _story(client, tmp_path / "b", seed=11)

    _, repayments, borrowers = first
    assert repayments and borrowers  # the story has changes of both kinds
    assert again == first
