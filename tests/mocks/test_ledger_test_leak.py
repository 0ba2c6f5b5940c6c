"""data.test_leak in the ledger: test-environment records join the feed (test borrowers with
test numbers and references the primary does not know), or production records carry test
amounts; a keyed fraction of entries, each journaled, the truth and the primary true."""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness.journal import ReminderScheduled
from mocks.bank import Changes, Population
from mocks.control import LedgerFaults
from tests.mocks.ledgerkit import served_ledger, until

LEAK = "test_leak"
TEST_RANGE = "+86170000"  # +86 170 0000 0000 to +86 170 0009 9999


def test_a_test_borrower_joins_the_feed_with_a_test_number(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served_ledger(tmp_path, population=Population(borrowers=50)) as s:
            s.ledger.switch(LedgerFaults(test_leak=1.0, test_leak_records="borrowers"))
            reminders = [s.ledger.tick() for _ in range(10)]

            entries = await s.feed()
            production = entries[0::2]
            leaked = entries[1::2]
            statuses = [(await s.primary(e["reminder_id"]))[0] for e in leaked]
            phones = {e.phone for e in s.journal().of(ReminderScheduled)}

            assert [e["reminder_id"] for e in production] == [r.reminder_id for r in reminders]
            assert statuses == [404] * 10  # the bank has no such reminder
            assert all(e["borrower"]["phone"].startswith(TEST_RANGE) for e in leaked)
            assert not {e["borrower"]["phone"] for e in leaked} & phones
            assert all(e["ref"].startswith("TEST") and len(e["ref"]) == 8 for e in leaked)
            # Due when the entry it joined is, so a notifier that trusts the feed sends it.
            assert [(e["remind_at"], e["send_by"]) for e in leaked] == [
                (e["remind_at"], e["send_by"]) for e in production]
            touches = s.touched(LEAK)
            assert [(t.mock, t.subject, t.detail) for t in touches] == [
                ("ledger", e["reminder_id"], {"records": "borrowers", "ref": e["ref"],
                                              "phone": e["borrower"]["phone"],
                                              "joined": r.reminder_id})
                for e, r in zip(leaked, reminders, strict=True)]
            # The truth never hears of them.
            assert {e.reminder_id for e in s.journal().of(ReminderScheduled)} == {
                r.reminder_id for r in reminders}

    asyncio.run(scenario())


def test_production_records_carry_test_amounts_in_the_replica_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served_ledger(tmp_path) as s:
            s.ledger.switch(LedgerFaults(test_leak=1.0, test_leak_records="amounts"))
            reminders = [s.ledger.tick() for _ in range(10)]

            entries = await s.feed()
            primaries = [(await s.primary(r.reminder_id))[1] for r in reminders]

            assert [e["reminder_id"] for e in entries] == [r.reminder_id for r in reminders]
            assert {e["installment"]["amount"] for e in entries} <= {"1.00", "0.01"}
            assert [p["installment"]["amount"] for p in primaries] == [r.amount for r in reminders]
            assert [(t.subject, t.detail) for t in s.touched(LEAK)] == [
                (r.reminder_id, {"records": "amounts", "version": 1, "truth": r.amount,
                                 "replica": e["installment"]["amount"]})
                for r, e in zip(reminders, entries, strict=True)]

    asyncio.run(scenario())


def test_the_leak_is_a_keyed_fraction_the_same_in_every_rerun(tmp_path: Path) -> None:
    async def leaked(folder: Path, off_for: int) -> tuple[list[str], list[tuple[str, str]]]:
        """60 ticks, the leak on from tick `off_for`: the reminders ticked with it on, and
        the (joined, test ref) of each test record."""
        async with served_ledger(folder, population=Population(borrowers=200)) as s:
            ticked = [s.ledger.tick().reminder_id for _ in range(off_for)]
            s.ledger.switch(LedgerFaults(test_leak=0.3))
            ticked = [s.ledger.tick().reminder_id for _ in range(60 - off_for)]
            return ticked, [(t.detail["joined"], t.detail["ref"]) for t in s.touched(LEAK)]

    async def scenario() -> None:
        all_on, first = await leaked(tmp_path / "first", 0)
        later_on, again = await leaked(tmp_path / "again", 20)

        assert later_on == all_on[20:]  # the same reminders: the seed and the tick count
        assert again == [(joined, ref) for joined, ref in first if joined in later_on]
        assert 8 <= len(first) <= 30  # of 60 entries, at 0.3 (seed 7 leaks a fixed number)

    asyncio.run(scenario())


def test_a_change_of_the_truth_is_an_entry_the_leak_draws_for(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served_ledger(tmp_path, changes=Changes(repaid=1.0)) as s:
            s.ledger.switch(LedgerFaults(test_leak=1.0, test_leak_records="amounts"))
            reminder = s.ledger.tick()
            await until(lambda: len(s.touched(LEAK)) == 2, "the repayment's entry")

            versions = [(e["version"], e["installment"]["amount"]) for e in await s.feed()]

            assert [version for version, _ in versions] == [1, 2]
            assert [t.detail["truth"] for t in s.touched(LEAK)] == [reminder.amount, "0.00"]
            assert {amount for _, amount in versions} <= {"1.00", "0.01"}

    asyncio.run(scenario())
