"""The outbox's batched claim (Outbox.claim_due): the due rows longest due first, at most the
limit, each marked `sending` once, none before its time; `claim` is a claim of one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from examples.reminder_service.outbox import Outbox
from examples.reminder_service.reminder import ReminderRecord

NOW = datetime.now(UTC)


def record(n: int, due_in: float) -> ReminderRecord:
    return ReminderRecord(
        reminder_id=f"ML-{n:06d}-001", ref=f"REF{n:05d}", version=1, cancelled=False,
        borrower_id=f"B{n:06d}", name="王秀英", phone="+8613912345678", opted_out=False,
        email=None, device_token=None, national_id="110105198801308902", account=None,
        amount="5234.00", due_date="2026-12-05", remind_at=NOW + timedelta(seconds=due_in),
        as_of=NOW)


@pytest.mark.parametrize("version", [1, 2])
def test_claim_due_takes_the_rows_due_longest_first_each_once(tmp_path: Path,
                                                             version: int) -> None:
    outbox = Outbox(str(tmp_path / "outbox.sqlite3"), version)
    try:
        # Due 5, 4, 3, 2, 1 s ago, stored out of order; one due only in an hour.
        outbox.add([record(n, -float(n)) for n in (3, 1, 5, 2, 4)] + [record(9, 3600.0)], 6)
        first = outbox.claim_due(3)
        assert [row.record.reminder_id for row in first] == [
            f"ML-{n:06d}-001" for n in (5, 4, 3)]
        assert [row.attempts for row in first] == [1, 1, 1]
        rest = outbox.claim_due(16)
        assert [row.record.reminder_id for row in rest] == [f"ML-{n:06d}-001" for n in (2, 1)]
        assert outbox.claim_due(16) == [] and outbox.claim() is None
        assert outbox.counts() == {"sending": 5, "pending": 1}
    finally:
        outbox.close()
