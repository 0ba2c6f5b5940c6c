"""The bank's seeded truth, without a process: the population, what a tick schedules, and how
changes are planned and applied (times are given, so nothing here waits)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mocks.bank import Bank, Changes, PlannedChange, Population, Record, ms_time

NOW = datetime(2026, 12, 1, 1, 0, 0, 123_456, tzinfo=UTC).timestamp()  # 09:00 in Shanghai
LEAD, WINDOW = 5.0, 20.0
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make(borrowers: int = 100, *, seed: int = 1, opted_out: float = 0.0,
         changes: Changes | None = None, locale: str = "zh_CN") -> Bank:
    return Bank(Population(borrowers=borrowers, opted_out=opted_out, locale=locale),
                changes or Changes(), lead=LEAD, window=WINDOW, seed=seed)


def valid_national_id(number: str) -> bool:
    """GB 11643: 17 digits, then the check character of their weighted sum."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], ID_WEIGHTS, strict=True))
    return number[17] == "10X98765432"[total % 11]


def test_a_population_of_2000_is_whole_distinct_and_valid() -> None:
    bank = make(2000, opted_out=0.1)
    people = [bank.borrower(index) for index in range(2000)]

    assert [p.borrower_id for p in people] == [f"B{n:06d}" for n in range(1, 2001)]
    assert len({p.phone for p in people}) == 2000
    assert all(re.fullmatch(r"\+861[3-9]\d{9}", p.phone) for p in people)
    assert all(valid_national_id(p.national_id) for p in people)
    assert all(p.name for p in people)
    assert sum(p.opted_out for p in people) == 200  # exactly the fraction


def test_a_large_population_costs_nothing_until_used() -> None:
    # A billion borrowers: one made eagerly per borrower would never get to the last one.
    bank = make(10**9)
    last = bank.borrower(10**9 - 1)
    assert last.borrower_id == "B1000000000"
    with pytest.raises(IndexError):
        bank.borrower(10**9)


def test_borrowers_depend_on_the_seed_only() -> None:
    one, same, other = make(seed=3), make(seed=3), make(seed=4)

    # Asked in a different order, each borrower is still the same person.
    forwards = [one.borrower(i) for i in range(50)]
    backwards = [same.borrower(i) for i in reversed(range(50))][::-1]
    assert forwards == backwards
    assert [other.borrower(i) for i in range(50)] != forwards


def test_names_follow_the_locale() -> None:
    chinese = make(locale="zh_CN").borrower(0).name
    english = make(locale="en_US").borrower(0).name

    assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", chinese)
    assert re.fullmatch(r"[A-Za-z .'-]+", english)


def test_a_tick_schedules_the_next_installment_of_a_drawn_loan() -> None:
    bank = make(1)
    first, second = bank.schedule(NOW).record, bank.schedule(NOW + 1).record

    assert first.loan_id == second.loan_id == "ML-000001"
    assert first.borrower.borrower_id == "B000001"
    assert second.installment == first.installment + 1
    assert first.reminder_id == f"ML-000001-{first.installment:03d}"
    assert first.ref != second.ref and re.fullmatch(r"[A-Z0-9]{8}", first.ref)
    assert first.amount == second.amount and re.fullmatch(r"\d+\.\d{2}", first.amount)
    assert 200_000 <= first.amount_cents <= 2_000_000
    assert (first.version, first.status) == (1, "scheduled")
    assert bank.record(first.reminder_id) == first


def test_times_are_whole_milliseconds_in_the_banks_time_zone() -> None:
    record = make().schedule(NOW).record

    assert record.as_of_ms == round(NOW * 1000) and record.as_of_ms % 1000 == 123
    assert record.remind_at_ms - record.as_of_ms == 5_000
    assert record.send_by_ms - record.remind_at_ms == 20_000
    assert ms_time(record.remind_at_ms).isoformat(timespec="milliseconds") == (
        "2026-12-01T09:00:05.123+08:00")
    today = ms_time(record.as_of_ms).date()
    assert 3 <= (record.due_date - today).days <= 10


def test_due_dates_are_days_in_shanghai_not_utc() -> None:
    # 23:30 UTC on 30 November is already 1 December in the bank.
    late_utc = datetime(2026, 11, 30, 23, 30, 0, 500_000, tzinfo=UTC).timestamp()
    record = make().schedule(late_utc).record

    assert ms_time(record.as_of_ms).date().isoformat() == "2026-12-01"
    assert (record.due_date - ms_time(record.as_of_ms).date()).days >= 3


def test_the_same_seed_and_ticks_plan_the_same_changes() -> None:
    changes = Changes(repaid=0.2, partially_repaid=0.2, phone_changed=0.3, opted_out=0.3,
                      opted_in=0.5)

    def story(seed: int) -> list[tuple[Record, tuple[PlannedChange, ...]]]:
        bank = make(5, seed=seed, opted_out=0.2, changes=changes)
        return [(s.record, s.changes) for s in (bank.schedule(NOW + i) for i in range(40))]

    first = story(9)
    assert story(9) == first
    assert story(10) != first
    kinds = {change.kind for _, planned in first for change in planned}
    assert kinds == {"repaid", "partially_repaid", "phone_changed", "opted_out", "opted_in"}


def test_changes_land_between_20_and_60_percent_of_the_lead() -> None:
    bank = make(50, changes=Changes(repaid=0.5, partially_repaid=0.5, phone_changed=1.0))
    for i in range(30):
        scheduled = bank.schedule(NOW + i * 10)
        for change in scheduled.changes:
            offset = change.at_ms - scheduled.record.as_of_ms
            assert offset >= 1_000
            # A borrower's change may wait for their previous one, but never past remind_at.
            assert offset <= 3_000 or change.kind == "phone_changed"
            assert change.at_ms <= scheduled.record.remind_at_ms


def test_a_repayment_is_in_full_or_in_part_never_both() -> None:
    bank = make(changes=Changes(repaid=0.5, partially_repaid=0.5))
    for i in range(50):
        kinds = [c.kind for c in bank.schedule(NOW + i).changes]
        assert kinds in (["repaid"], ["partially_repaid"])
    with pytest.raises(ValidationError, match="at most 1"):
        Changes(repaid=0.6, partially_repaid=0.6)


def test_a_partial_repayment_lowers_the_amount_by_10_to_90_percent() -> None:
    bank = make(changes=Changes(partially_repaid=1.0))
    for i in range(50):
        scheduled = bank.schedule(NOW + i)
        [change] = scheduled.changes
        assert change.amount_cents is not None
        share = change.amount_cents / scheduled.record.amount_cents
        assert 0.1 - 1e-4 <= share <= 0.9 + 1e-4


def test_one_borrowers_changes_happen_in_the_order_drawn() -> None:
    bank = make(1, changes=Changes(phone_changed=1.0))
    times = [c.at_ms for i in range(20) for c in bank.schedule(NOW).changes]

    assert times == sorted(times) and len(set(times)) == len(times)


def test_a_phone_change_gives_every_reminder_of_the_borrower_a_new_version() -> None:
    bank = make(1, changes=Changes(phone_changed=1.0))
    first = bank.schedule(NOW)
    second = bank.schedule(NOW)
    change = first.changes[0]

    applied = bank.apply(change, change.at_ms / 1000)

    assert applied is not None
    assert applied.borrower.phone == change.phone != first.record.borrower.phone
    assert [(r.reminder_id, r.version, r.borrower.phone) for r in applied.records] == [
        (first.record.reminder_id, 2, change.phone), (second.record.reminder_id, 2, change.phone)]
    assert all(r.as_of_ms == change.at_ms for r in applied.records)
    assert bank.record(second.record.reminder_id) == applied.records[1]
    assert bank.borrower(0).phone == change.phone


def test_new_and_unused_numbers_were_never_anyones() -> None:
    bank = make(20, changes=Changes(phone_changed=1.0))
    originals = {bank.borrower(i).phone for i in range(20)}
    new = {c.phone for i in range(50) for c in bank.schedule(NOW + i * 10).changes}
    unused = {bank.unused_phone(f"ML-{n:06d}-001", 1) for n in range(50)}

    assert len(new) == 50 and len(unused) == 50
    assert not originals & new and not originals & unused and not new & unused


def test_an_unused_number_is_the_same_for_a_reminders_version_in_any_order() -> None:
    keys = [(f"ML-{n:06d}-001", version) for n in range(20) for version in (1, 2)]
    first, second = make(seed=3), make(seed=3)
    second.schedule(NOW)  # what else the bank did meanwhile does not matter

    in_order = [first.unused_phone(*key) for key in keys]
    assert [second.unused_phone(*key) for key in reversed(keys)] == in_order[::-1]
    assert len(set(in_order)) == len(keys)  # another reminder or version, another number
    assert make(seed=4).unused_phone(*keys[0]) != in_order[0]


def test_nothing_changes_after_remind_at_or_after_cancellation() -> None:
    bank = make(changes=Changes(repaid=1.0))
    scheduled = bank.schedule(NOW)
    [repaid] = scheduled.changes
    after_remind_at = scheduled.record.remind_at_ms / 1000 + 0.001

    assert bank.apply(repaid, after_remind_at) is None
    applied = bank.apply(repaid, repaid.at_ms / 1000)
    assert applied is not None
    [cancelled] = applied.records
    assert (cancelled.status, cancelled.amount, cancelled.version) == ("cancelled", "0.00", 2)
    partial = replace(repaid, kind="partially_repaid", amount_cents=100)
    assert bank.apply(partial, repaid.at_ms / 1000) is None


def test_opt_outs_and_opt_ins_follow_the_planned_consent() -> None:
    bank = make(1, changes=Changes(opted_out=1.0, opted_in=1.0))
    kinds = [c.kind for i in range(4) for c in bank.schedule(NOW + i * 10).changes]

    assert kinds == ["opted_out", "opted_in", "opted_out", "opted_in"]


def test_an_opt_in_of_a_borrower_already_in_changes_nothing() -> None:
    bank = make(1, opted_out=1.0, changes=Changes(opted_in=1.0))
    scheduled = bank.schedule(NOW)
    [opt_in] = scheduled.changes
    assert scheduled.record.borrower.opted_out is True

    applied = bank.apply(opt_in, opt_in.at_ms / 1000)
    assert applied is not None and applied.borrower.opted_out is False
    assert bank.apply(opt_in, opt_in.at_ms / 1000 + 0.01) is None
