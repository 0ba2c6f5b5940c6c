"""Same seed, same schedule: the i-th reminder of two banks with one seed is the same reminder
(id, reference, borrower, amount, due date, planned changes), whenever and however unevenly
their ticks come, so `notifychaos compare` can line up a rehearsal's reminders with its
baseline's."""

from __future__ import annotations

from datetime import UTC, datetime

from mocks.bank import Bank, Changes, Population, Scheduled, ms_time

CHANGES = Changes(repaid=0.2, partially_repaid=0.2, phone_changed=0.2, opted_out=0.2,
                  opted_in=0.5)
# 15:59:50 UTC is ten seconds before midnight in Shanghai: a slow run crosses into the next day.
BEFORE_MIDNIGHT = datetime(2026, 12, 1, 15, 59, 50, tzinfo=UTC).timestamp()


def story(start: float, gap: float, seed: int = 7, count: int = 80) -> list[Scheduled]:
    bank = Bank(Population(borrowers=300, opted_out=0.1), CHANGES, lead=5.0, window=20.0,
                seed=seed)
    return [bank.schedule(start + i * gap + (i % 3) * gap / 2) for i in range(count)]


def same_reminder(scheduled: Scheduled) -> tuple[object, ...]:
    """What a rerun must repeat of a reminder: everything but the moment its tick came (and a
    borrower change's moment, which waits for that borrower's previous change)."""
    record = scheduled.record
    repayments = ("repaid", "partially_repaid")
    return (record.reminder_id, record.ref, record.loan_id, record.borrower, record.installment,
            record.amount, record.due_date, record.remind_at_ms - record.as_of_ms,
            record.send_by_ms - record.remind_at_ms,
            tuple((c.kind, c.amount_cents, c.phone,
                   c.at_ms - record.as_of_ms if c.kind in repayments else None)
                  for c in scheduled.changes))


def test_the_ith_reminder_of_two_banks_with_one_seed_is_the_same_reminder() -> None:
    # One run ticks every second and crosses midnight in Shanghai after ten ticks; its rerun,
    # an hour earlier, ticks twenty times a second and stays within the day.
    slow = story(BEFORE_MIDNIGHT, 1.0)
    fast = story(BEFORE_MIDNIGHT - 3600, 0.05)
    assert ms_time(slow[-1].record.as_of_ms).date() != ms_time(slow[0].record.as_of_ms).date()
    assert [same_reminder(s) for s in slow] == [same_reminder(s) for s in fast]
    # The story is rich enough to mean something: borrowers met twice, every kind of change.
    borrowers = [s.record.borrower.borrower_id for s in slow]
    assert len(set(borrowers)) < len(borrowers)
    assert {c.kind for s in slow for c in s.changes} == {
        "repaid", "partially_repaid", "phone_changed", "opted_out", "opted_in"}
    # A shorter rerun owes the first reminders of the longer one, the same ones.
    assert [same_reminder(s) for s in story(BEFORE_MIDNIGHT, 0.3, count=30)] == [
        same_reminder(s) for s in slow[:30]]
    other = story(BEFORE_MIDNIGHT, 1.0, seed=8)
    assert [s.record.ref for s in other] != [s.record.ref for s in slow]


def test_due_dates_count_from_the_banks_first_day() -> None:
    slow = story(BEFORE_MIDNIGHT, 1.0)
    first_day = ms_time(slow[0].record.as_of_ms).date()
    assert all(3 <= (s.record.due_date - first_day).days <= 10 for s in slow)
