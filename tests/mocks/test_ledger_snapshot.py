"""data.snapshot in the ledger: a replica restored from an older snapshot re-serves what it held
then, withholds the changes made while it is in force and gives new reminders the contact of
the snapshot; each record it touches is journaled, and the truth and the primary stay true."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from harness.journal import BorrowerChanged, ReminderChanged, ReminderScheduled
from mocks.bank import Changes, Population
from mocks.control import LedgerFaults
from tests.mocks.ledgerkit import Served, served_ledger, until

SNAPSHOT = "snapshot_age"


def of(entries: list[dict[str, Any]], reminder_id: str) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry["reminder_id"] == reminder_id]


async def changed(served: Served, count: int = 1) -> list[ReminderChanged | BorrowerChanged]:
    """Wait until the truth has changed `count` times; the changes, oldest first."""
    def changes() -> list[ReminderChanged | BorrowerChanged]:
        journal = served.journal()
        found = [*journal.of(ReminderChanged), *journal.of(BorrowerChanged)]
        return sorted(found, key=lambda e: e.t) if len(found) >= count else []

    return await until(changes, f"{count} change(s) of the truth")


def shown(entry: dict[str, Any]) -> dict[str, Any]:
    borrower, installment = entry["borrower"], entry["installment"]
    return {"version": entry["version"], "status": entry["status"],
            "amount": installment["amount"], "phone": borrower["phone"],
            "opted_out": borrower["opted_out"]}


@pytest.mark.parametrize(("changes", "opted_out", "forgot"), [
    (Changes(repaid=1.0), 0.0, {"status", "amount"}),
    (Changes(partially_repaid=1.0), 0.0, {"amount"}),
    (Changes(phone_changed=1.0), 0.0, {"phone"}),
    (Changes(opted_out=1.0), 0.0, {"opted_out"}),
    (Changes(opted_in=1.0), 1.0, {"opted_out"}),
])
def test_a_change_made_since_the_snapshot_is_re_served_as_it_stood(
        tmp_path: Path, changes: Changes, opted_out: float, forgot: set[str]) -> None:
    async def scenario() -> None:
        async with served_ledger(tmp_path, changes=changes,
                                 population=Population(borrowers=1, opted_out=opted_out)) as s:
            reminder = s.ledger.tick()
            await changed(s)
            before = await s.feed()
            s.ledger.switch(LedgerFaults(snapshot_age=60.0))

            entries = await s.feed()
            status, record = await s.primary(reminder.reminder_id)

            # The restored replica re-publishes its row: version 1 again, after version 2.
            assert entries[:len(before)] == before
            [first, second] = before
            assert entries[len(before):] == [first]
            assert shown(first)["version"] == 1 and shown(second)["version"] == 2
            assert {name for name, value in shown(first).items()
                    if value != shown(second)[name]} == forgot | {"version"}
            assert (status, record) == (200, second)  # the primary stays true
            [touch] = s.touched(SNAPSHOT)
            assert (touch.mock, touch.subject) == ("ledger", reminder.reminder_id)
            assert touch.detail == {"action": "restored", "version": 2, "served": 1,
                                    "forgot": {name: shown(second)[name] for name in forgot}}

    asyncio.run(scenario())


async def clear_moment() -> float:
    """A moment 50 ms clear of what happened before it and of what happens after it: the
    ledger's times are whole milliseconds, so a snapshot taken within one of a change could
    fall on either side of it."""
    await asyncio.sleep(0.05)
    taken = time.time()
    await asyncio.sleep(0.05)
    return taken


def test_only_changes_made_since_the_snapshot_was_taken_are_forgotten(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served_ledger(tmp_path, changes=Changes(repaid=1.0)) as s:
            older = s.ledger.tick()
            await changed(s)
            taken = await clear_moment()  # between the two repayments
            newer = s.ledger.tick()
            await changed(s, 2)
            s.ledger.switch(LedgerFaults(snapshot_age=time.time() - taken))

            entries = await s.feed()

            assert [e["version"] for e in of(entries, older.reminder_id)] == [1, 2]
            assert [(e["version"], e["status"]) for e in of(entries, newer.reminder_id)] == [
                (1, "scheduled"), (2, "cancelled"), (1, "scheduled")]
            assert [e.subject for e in s.touched(SNAPSHOT)] == [newer.reminder_id]

    asyncio.run(scenario())


def test_while_in_force_changes_never_reach_the_feed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served_ledger(tmp_path, changes=Changes(repaid=1.0)) as s:
            s.ledger.switch(LedgerFaults(snapshot_age=30.0))
            withheld = s.ledger.tick()
            [repayment] = await changed(s)
            s.ledger.switch(LedgerFaults())
            after = s.ledger.tick()
            await changed(s, 2)

            entries = await s.feed()
            status, record = await s.primary(withheld.reminder_id)

            # Not even once the switch is off: a re-synced replica does not replay them.
            assert [(e["version"], e["status"]) for e in of(entries, withheld.reminder_id)] == [
                (1, "scheduled")]
            assert (status, record["version"], record["status"]) == (200, 2, "cancelled")
            assert repayment.reminder_id == withheld.reminder_id  # the truth is journaled
            assert [e["version"] for e in of(entries, after.reminder_id)] == [1, 2]
            [touch] = s.touched(SNAPSHOT)
            assert (touch.subject, touch.detail) == (withheld.reminder_id, {
                "action": "withheld", "version": 2,
                "forgot": {"status": "cancelled", "amount": "0.00"}})

    asyncio.run(scenario())


def test_a_reminder_scheduled_while_in_force_carries_the_snapshots_contact(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served_ledger(tmp_path, changes=Changes(phone_changed=1.0),
                                 population=Population(borrowers=1)) as s:
            first = s.ledger.tick()
            [moved] = await changed(s)
            s.ledger.switch(LedgerFaults(snapshot_age=60.0))
            second = s.ledger.tick()
            await changed(s, 2)  # the second reminder's own phone change: withheld

            entries = await s.feed()
            [truth] = [e for e in s.journal().of(ReminderScheduled)
                       if e.reminder_id == second.reminder_id]
            status, record = await s.primary(second.reminder_id)

            old = first.borrower.phone
            assert isinstance(moved, BorrowerChanged) and moved.phone != old
            # The journal's truth and the primary have the new number; the replica the old.
            assert truth.phone == moved.phone
            assert [e["borrower"]["phone"] for e in of(entries, second.reminder_id)] == [old]
            assert status == 200 and record["borrower"]["phone"] != old
            actions = [(e.subject, e.detail["action"]) for e in s.touched(SNAPSHOT)]
            assert actions == [(first.reminder_id, "restored"),
                               (second.reminder_id, "stale_contact"),
                               (first.reminder_id, "withheld"),
                               (second.reminder_id, "withheld")]
            stale = s.touched(SNAPSHOT)[1]
            assert stale.detail == {"action": "stale_contact", "version": 1,
                                    "forgot": {"phone": moved.phone}}

    asyncio.run(scenario())


def test_the_version_restored_is_the_one_standing_when_the_snapshot_was_taken(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        # Seed 120: the partial repayment 0.41 s after scheduling, the phone change 1.15 s.
        async with served_ledger(tmp_path, changes=Changes(partially_repaid=1.0,
                                                           phone_changed=1.0),
                                 population=Population(borrowers=1), seed=120) as s:
            reminder = s.ledger.tick()
            await changed(s)
            taken = await clear_moment()
            earlier, later = await changed(s, 2)
            s.ledger.switch(LedgerFaults(snapshot_age=time.time() - taken))

            entries = await s.feed()

            assert earlier.t < taken < later.t
            assert isinstance(earlier, ReminderChanged) and isinstance(later, BorrowerChanged)
            assert [e["version"] for e in entries] == [1, 2, 3, 2]
            assert entries[-1] == entries[1]
            [touch] = s.touched(SNAPSHOT)
            assert (touch.subject, touch.detail) == (reminder.reminder_id, {
                "action": "restored", "version": 3, "served": 2,
                "forgot": {"phone": later.phone}})

    asyncio.run(scenario())


def test_another_switch_while_in_force_restores_nothing_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served_ledger(tmp_path, changes=Changes(repaid=1.0)) as s:
            s.ledger.tick()
            await changed(s)
            s.ledger.switch(LedgerFaults(snapshot_age=60.0))
            s.ledger.switch(LedgerFaults(snapshot_age=60.0, duplicate=0.5))

            assert [e["version"] for e in await s.feed()] == [1, 2, 1]
            assert len(s.touched(SNAPSHOT)) == 1

    asyncio.run(scenario())
