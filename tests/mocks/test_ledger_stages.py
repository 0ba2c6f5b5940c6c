"""The bank's own reminder calendar (`MocksConfig.staging`): an installment due on the compressed
calendar gets one reminder per stage, whose feed entry gives the due date and the stage but no
remind_at, while the journal keeps the true remind_at and send_by the scorer judges by."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from harness.journal import JournalWriter, ReminderChanged, ReminderScheduled, read_journal
from mocks.bank import BANK_TZ, Bank, Changes, ClockUnset, Population, Staging
from mocks.ledger import Ledger, create_app
from mocks.manifest import MocksConfig
from tests.mocks.ledgerkit import until

START = date(2030, 3, 1)
SPEED = 31 * 86_400 / 40  # 31 days in 40 s: a day is 1.29 s
DAY = 86_400 / SPEED
STAGING = Staging(start=START, speed=SPEED, before_days=(3, 1, 0), at="09:00")
LEAD, WINDOW = 1.0, 4.0
EPOCH = 1_900_000_000.0


def bank(changes: Changes | None = None, staging: Staging | None = STAGING) -> Bank:
    return Bank(Population(borrowers=50), changes or Changes(), lead=LEAD, window=WINDOW, seed=5,
                staging=staging)


def calendar(t: float, epoch: float = EPOCH) -> datetime:
    """The compressed calendar's reading (local, Shanghai) at Unix time `t`."""
    midnight = datetime(START.year, START.month, START.day, tzinfo=UTC)
    return (midnight + timedelta(seconds=(t - epoch) * SPEED)).astimezone(BANK_TZ)


@pytest.mark.parametrize("after", [0.0, 0.4, 7.3, 21.0, 39.9])
def test_an_installment_gets_one_reminder_per_stage_due_on_the_calendar(after: float) -> None:
    staged = bank()
    staged.clock(EPOCH)
    now = EPOCH + after

    records = staged.schedule(now).records

    assert [r.reminder_id.rsplit("-", 1)[1] for r in records] == ["T3", "T1", "T0"]
    assert len({r.ref for r in records}) == 3
    [due] = {r.due_date for r in records}
    assert [r.stage.days_before if r.stage else None for r in records] == [3, 1, 0]
    for record in records:
        assert record.stage is not None and record.stage.at == "09:00"
        wanted = calendar(record.remind_at_ms / 1000)
        # Each at 09:00 Shanghai time, its days before the due date (to the millisecond).
        assert wanted.date() == due - timedelta(days=record.stage.days_before)
        assert abs(wanted - wanted.replace(hour=9, minute=0, second=0, microsecond=0)) < \
            timedelta(seconds=SPEED / 1000)
        assert record.send_by_ms - record.remind_at_ms == WINDOW * 1000
        assert record.as_of_ms == round(now * 1000)
    # The first stage is at least the lead ahead, and less than a calendar day more.
    first = records[0].remind_at_ms / 1000
    assert now + LEAD <= first + 0.001 < now + LEAD + DAY


def test_stages_keep_the_draws_of_the_reminders_without_them() -> None:
    plain, staged = bank(staging=None), bank()
    staged.clock(EPOCH)

    for k in range(20):
        [alone] = plain.schedule(EPOCH + k).records
        first = staged.schedule(EPOCH + k).records[0]
        assert first.reminder_id == f"{alone.reminder_id}-T3"
        assert (first.ref, first.borrower, first.amount_cents) == (
            alone.ref, alone.borrower, alone.amount_cents)


def test_a_staged_bank_schedules_nothing_before_it_is_told_the_epoch() -> None:
    with pytest.raises(ClockUnset):
        bank().schedule(EPOCH)


def test_a_repayment_cancels_every_stage_of_the_installment() -> None:
    staged = bank(Changes(repaid=1.0))
    staged.clock(EPOCH)
    scheduled = staged.schedule(EPOCH)
    [change] = scheduled.changes

    applied = staged.apply(change, change.at_ms / 1000)

    assert applied is not None
    assert [r.reminder_id for r in applied.records] == [
        r.reminder_id for r in scheduled.records]
    assert {r.status for r in applied.records} == {"cancelled"}


@asynccontextmanager
async def served(folder: Path, staging: Staging | None = STAGING,
                 changes: Changes | None = None) -> AsyncIterator[TestClient[Any, Any]]:
    config = MocksConfig(seed=5, window=WINDOW, lead=LEAD, journal_dir=str(folder),
                         population=Population(borrowers=50), changes=changes or Changes(),
                         vendors={}, staging=staging)
    writer = JournalWriter(folder, "mocks")
    try:
        async with TestClient(TestServer(create_app(Ledger(writer, config)))) as client:
            yield client
    finally:
        writer.close()


def test_the_feed_gives_the_stage_and_the_journal_the_true_times(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(tmp_path / "journal") as client:
            refused = await client.post("/admin/ticks")
            epoch = time.time()  # the month begins now
            told = await client.put("/admin/clock", json={"epoch": epoch})
            created = await client.post("/admin/ticks")
            reminder_id = (await created.json())["reminder_id"]
            page = await (await client.get("/v1/reminders/changes")).json()
            primary = await (await client.get(f"/v1/reminders/{reminder_id}")).json()

            assert refused.status == 409 and "PUT /admin/clock" in (await refused.text())
            assert told.status == 200
            assert created.status == 201
            entries = page["changes"]
            assert [e["stage"] for e in entries] == [
                {"days_before": days, "at": "09:00"} for days in (3, 1, 0)]
            assert {(e["remind_at"], e["send_by"]) for e in entries} == {(None, None)}
            assert primary == entries[0]
            truths = read_journal(tmp_path / "journal").of(ReminderScheduled)
            assert [t.reminder_id for t in truths] == [e["reminder_id"] for e in entries]
            for truth, entry in zip(truths, entries, strict=True):
                due = date.fromisoformat(entry["installment"]["due_date"])
                wanted = calendar(truth.remind_at, epoch)
                assert wanted.date() == due - timedelta(days=entry["stage"]["days_before"])
                assert (wanted.hour, wanted.minute) in ((9, 0), (8, 59))
                assert truth.send_by == pytest.approx(truth.remind_at + WINDOW)
                assert truth.due_date == entry["installment"]["due_date"]

    asyncio.run(scenario())


def test_a_repayment_is_journaled_for_each_stage(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(tmp_path / "journal", changes=Changes(repaid=1.0)) as client:
            await client.put("/admin/clock", json={"epoch": time.time()})
            await client.post("/admin/ticks")

            changed = await until(
                lambda: read_journal(tmp_path / "journal").of(ReminderChanged), "a repayment")
            assert [c.reminder_id.rsplit("-", 1)[1] for c in changed] == ["T3", "T1", "T0"]
            assert {c.change for c in changed} == {"repaid"}

    asyncio.run(scenario())


@pytest.mark.parametrize("body", [b"", b"{}", b'{"epoch": "soon"}', b'{"epoch": true}',
                                  b'{"epoch": -1}', b'{"epoch": 1, "speed": 2}'])
def test_a_clock_other_than_an_epoch_is_400(tmp_path: Path, body: bytes) -> None:
    async def scenario() -> None:
        async with served(tmp_path / "journal") as client:
            response = await client.put("/admin/clock", data=body)
            assert response.status == 400, await response.text()

    asyncio.run(scenario())


def test_a_bank_without_stages_takes_no_clock(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(tmp_path / "journal", staging=None) as client:
            response = await client.put("/admin/clock", json={"epoch": EPOCH})
            assert response.status == 409
            assert "stage" not in (await (await client.post("/admin/ticks")).json())

    asyncio.run(scenario())
