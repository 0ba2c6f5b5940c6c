"""The scorecard counts what data.snapshot and data.test_leak cause: journals written by the
real Ledger while a naive consumer (it trusts the feed, never asks the primary) sends, scored.

The consumer journals each send as a vendor mock would (`send.recorded`, in the inbox at
once); the runs are played side by side in one event loop, each with a ledger of its own.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.continuity import judge_run, score
from harness.faults import FAULTS
from harness.gates import parse_gate
from harness.journal import (
    FaultApplied,
    FaultReverted,
    FaultTouched,
    Journal,
    JournalWriter,
    LoadStarted,
    MockFaultsChanged,
    RunEnded,
    RunStarted,
    SendRecorded,
)
from harness.scorecard import Scorecard
from harness.verdict import gate_results
from mocks.bank import Changes, Population
from mocks.control import LedgerFaults
from tests.harness.journals import SCENARIO, T0, journal, owed, sent, step
from tests.mocks.ledgerkit import Served, served_ledger, until

CHANGES = Changes(repaid=0.3, partially_repaid=0.3, phone_changed=0.4, opted_out=0.3)
TICKS = 30
# Changes happen 0.8 to 2.4 s after scheduling: each has taken effect (past the truth's 1 s
# grace) by remind_at, when the consumer sends.
LEAD = 4.0
WINDOW = 3.0


def epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


class Naive:
    """Takes the latest entry of each reminder as the truth and sends it when its remind_at
    comes, unless cancelled or opted out."""

    def __init__(self, served: Served, vendor: JournalWriter) -> None:
        self._served = served
        self._vendor = vendor
        self._latest: dict[str, dict[str, Any]] = {}
        self._decided: set[str] = set()
        self.polled_at = 0.0

    async def run(self) -> None:
        cursor = 0
        while True:
            response = await self._served.client.get(
                "/v1/reminders/changes", params={"cursor": cursor, "limit": 500})
            page = await response.json()
            for entry in page["changes"]:
                self._latest[entry["reminder_id"]] = entry
            cursor = page["next_cursor"]
            now = time.time()
            for reminder_id, entry in self._latest.items():
                if reminder_id in self._decided or epoch(entry["remind_at"]) > now:
                    continue
                self._decided.add(reminder_id)
                if entry["status"] == "scheduled" and not entry["borrower"]["opted_out"]:
                    self._send(entry, now)
            self.polled_at = now
            await asyncio.sleep(0.05)  # the consumer's poll interval

    def _send(self, entry: dict[str, Any], now: float) -> None:
        installment = entry["installment"]
        self._vendor.write(SendRecorded(
            t=now, vendor="sms", message_id=f"m-{entry['reminder_id']}",
            to=entry["borrower"]["phone"],
            body=f"ref:{entry['ref']} amount:{installment['amount']} "
                 f"due:{installment['due_date']}", inbox_at=now))


async def rehearse(folder: Path, fault: str | None = None,
                   params: dict[str, float | int | str] | None = None
                   ) -> tuple[Scorecard, list[FaultTouched], Journal]:
    """One run: the step's switches on (as the harness makes them from its kind and params),
    TICKS reminders scheduled at once, the consumer sending until every window has closed; its
    scorecard, the ledger's touches and the journal."""
    async with served_ledger(folder, changes=CHANGES, population=Population(borrowers=500),
                             lead=LEAD, window=WINDOW) as served:
        harness = JournalWriter(served.journal_dir, "harness")
        vendor = JournalWriter(served.journal_dir, "vendor")
        harness.write(RunStarted(scenario=SCENARIO))
        harness.write(LoadStarted(pid=1))
        if fault is not None:
            switches = FAULTS[fault].switches
            assert switches is not None
            served.ledger.switch(LedgerFaults.model_validate(switches(params or {})))
            harness.write(FaultApplied(step=0, fault=fault, link="ledger", params=params or {}))
        naive = Naive(served, vendor)
        consumer = asyncio.create_task(naive.run())
        records = [served.ledger.tick() for _ in range(TICKS)]
        last = max(record.send_by_ms for record in records) / 1000
        await until(lambda: naive.polled_at > last, "every window closed", timeout=30)
        consumer.cancel()
        if fault is not None:
            harness.write(FaultReverted(step=0, fault=fault, link="ledger"))
        harness.write(RunEnded(status="completed"))
        for writer in (harness, vendor):
            writer.close()
    written = served.journal()
    return score(written), written.of(FaultTouched), written


def test_snapshot_and_test_leak_show_in_the_scorecard(tmp_path: Path) -> None:
    Rehearsed = tuple[Scorecard, list[FaultTouched], Journal]

    async def runs() -> tuple[Rehearsed, Rehearsed, Rehearsed, Rehearsed]:
        return await asyncio.gather(
            rehearse(tmp_path / "baseline"),
            rehearse(tmp_path / "snapshot", "data.snapshot", {"age": 60_000}),  # ms
            rehearse(tmp_path / "borrowers", "data.test_leak",
                     {"fraction": 0.5, "records": "borrowers"}),
            rehearse(tmp_path / "amounts", "data.test_leak",
                     {"fraction": 0.5, "records": "amounts"}))

    ((baseline, _, _), (snapshot, forgotten, _), (borrowers, leaked, leaked_journal),
     (amounts, _, _)) = asyncio.run(runs())

    defects = ("sent_after_repayment", "wrong_recipient", "wrong_content", "sent_to_opted_out",
               "sent_to_test_data", "unmatched")
    assert {name: baseline.metric(name) for name in defects} == dict.fromkeys(defects, 0.0)
    assert baseline.continuity == 1.0 and baseline.owed > 0

    # The snapshot's replica forgets the repayments, partial repayments, phone changes and
    # opt-outs made while it is in force, and the existing figures count each.
    assert snapshot.sent_after_repayment > 0
    assert snapshot.outcomes["wrong_recipient"] > 0
    assert snapshot.outcomes["wrong_content"] > 0
    assert snapshot.sent_to_opted_out > 0
    assert snapshot.sent_to_test_data == 0
    [row] = snapshot.faults
    assert row.touched == len(forgotten) > 0
    assert row.effect == f"{len(forgotten)} records forgotten (snapshot_age)"

    # Every test record the ledger leaked was sent, and each send counts once: not unmatched.
    test_records = [touch for touch in leaked if touch.detail["records"] == "borrowers"]
    assert borrowers.sent_to_test_data == len(test_records) > 0
    assert borrowers.unmatched == 0
    assert borrowers.sent_after_repayment == 0 and borrowers.outcomes["wrong_recipient"] == 0
    [row] = borrowers.faults
    assert row.effect == f"{len(test_records)} test records leaked (borrowers)"
    # A failed gate on it names the test records sent.
    [gated] = gate_results([parse_gate("sent_to_test_data == 0")], borrowers,
                           judge_run(leaked_journal))
    assert gated.witnesses and set(gated.witnesses) <= {touch.subject for touch in test_records}

    # Test amounts sent as they are: wrong content, not test data.
    assert amounts.outcomes["wrong_content"] > 0
    assert amounts.sent_to_test_data == 0
    [row] = amounts.faults
    assert row.effect.endswith("test records leaked (amounts)")


def test_what_a_switch_touched_before_the_step_was_journaled_counts_for_it() -> None:
    # The ledger journals its switch, restores the snapshot (touching records) and answers;
    # only then does the harness journal the step applied.
    def restored(at: float) -> FaultTouched:
        return FaultTouched(t=T0 + at, mock="ledger", switch="snapshot_age", subject="rem-A",
                            detail={"action": "restored"})

    card = score(journal(
        restored(9.0),  # before the switch: another story
        MockFaultsChanged(t=T0 + 9.95, mock="ledger", faults={"snapshot_age": 30.0}),
        restored(9.96),
        step(0, "data.snapshot", "ledger", 10, 20, {"age": 30_000}),
        owed("AAAAAAAA", 12), sent("AAAAAAAA", 12.5)))

    [row] = card.faults
    assert (row.touched, row.effect) == (1, "1 records forgotten (snapshot_age)")
