"""Batched ticks: one request schedules `count` reminders, the very ones as many single ticks
would (drawn from the seed by their number), each named in the answer; a bad count is refused
and schedules nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from harness.journal import BorrowerChanged, ReminderChanged, ReminderScheduled
from harness.ticking import MAX_BATCH
from mocks.bank import Changes
from tests.mocks.ledgerkit import Served, served_ledger

LEAD = 0.5
"""Seconds to remind_at: each reminder's changes happen within 0.3 s of its tick."""
CHANGES = Changes(repaid=0.2, partially_repaid=0.2, phone_changed=0.2, opted_out=0.1,
                  opted_in=0.1)
BATCHES = [1, 5, 12, 1, 21]
TIMES = {"t", "seq", "remind_at", "send_by"}
"""What differs between two runs of one seed: when things happened, not what."""


def without_times(event: Any) -> dict[str, Any]:
    return {key: value for key, value in event.model_dump().items() if key not in TIMES}


async def journal_of(served: Served, bodies: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    """Tick with each body in turn; then, once every change has had its time, the reminders
    and the changes of the truth the ledger journaled (without their times)."""
    for body in bodies:
        response = await served.client.post("/admin/ticks", data=body)
        assert response.status == 201, await response.text()
    # Every change's timer is due within 0.6 x LEAD of its tick: this sleep ends after them.
    await asyncio.sleep(LEAD * 2)
    journal = served.journal()
    # The changes' timers interleave as the ticks' times fall, in any run: in order of what.
    return {"scheduled": [without_times(e) for e in journal.of(ReminderScheduled)],
            "changed": sorted((without_times(e) for e in journal.of(ReminderChanged)),
                              key=repr),
            "borrowers": sorted((without_times(e) for e in journal.of(BorrowerChanged)),
                                key=repr)}


def test_batches_schedule_the_same_reminders_as_as_many_single_ticks(tmp_path: Path) -> None:
    async def scenario() -> tuple[dict[str, list[dict[str, Any]]], ...]:
        async with served_ledger(tmp_path / "single", changes=CHANGES, lead=LEAD) as single:
            one_by_one = await journal_of(single, [b""] * sum(BATCHES))
        async with served_ledger(tmp_path / "batched", changes=CHANGES, lead=LEAD) as batched:
            in_batches = await journal_of(
                batched, [f'{{"count": {count}}}'.encode() for count in BATCHES])
        return one_by_one, in_batches

    one_by_one, in_batches = asyncio.run(scenario())

    assert len(one_by_one["scheduled"]) == sum(BATCHES)
    assert one_by_one["changed"] and one_by_one["borrowers"]  # the fates are compared too
    assert in_batches == one_by_one


def test_a_batch_answers_each_reminder_in_turn_and_a_bare_tick_as_today(tmp_path: Path) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[ReminderScheduled]]:
        async with served_ledger(tmp_path) as served:
            bare = await served.client.post("/admin/ticks")
            batch = await served.client.post("/admin/ticks", json={"count": 3})
            assert (bare.status, batch.status) == (201, 201)
            return await bare.json(), await batch.json(), served.journal().of(ReminderScheduled)

    bare, batch, scheduled = asyncio.run(scenario())

    named = [{"reminder_id": event.reminder_id, "ref": event.ref} for event in scheduled]
    assert bare == named[0]
    assert batch == {"ticks": named[1:]}


@pytest.mark.parametrize("body", [
    b'{"count": 0}', f'{{"count": {MAX_BATCH + 1}}}'.encode(), b'{"count": -2}',
    b'{"count": true}', b'{"count": "3"}', b'{"count": 2.0}', b'{"count": 2, "due": "x"}',
    b'{"counts": 2}',
], ids=["zero", "over-the-bound", "negative", "bool", "string", "float", "more-fields",
        "misspelt"])
def test_a_bad_count_is_refused_in_one_line_and_schedules_nothing(
        tmp_path: Path, body: bytes) -> None:
    async def scenario() -> tuple[int, dict[str, Any], int]:
        async with served_ledger(tmp_path) as served:
            response = await served.client.post("/admin/ticks", data=body)
            return (response.status, await response.json(),
                    len(served.journal().of(ReminderScheduled)))

    status, answer, scheduled = asyncio.run(scenario())

    assert (status, scheduled) == (400, 0)
    assert answer == {"error": f'a tick takes no body, {{}} or {{"count": N}} with N from 1 to '
                               f"{MAX_BATCH}"}


def test_the_largest_batch_is_scheduled_whole(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with served_ledger(tmp_path) as served:
            response = await served.client.post("/admin/ticks", json={"count": MAX_BATCH})
            ticks = (await response.json())["ticks"]
            return response.status, len(ticks), len(served.journal().of(ReminderScheduled))

    assert asyncio.run(scenario()) == (201, MAX_BATCH, MAX_BATCH)
