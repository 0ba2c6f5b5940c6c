"""The scorer's engine gives the pure scorer's scorecard: random journals (on time, late, early,
missed, duplicates, wrong recipient and content, uncorrelated sends, phone changes, opt-outs,
repayments, leaked test data, personal data), judged in one partition and in several."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.continuity import score
from harness.engine import score_engine
from harness.journal import (
    BorrowerChanged,
    BorrowerOptedOut,
    Event,
    FaultTouched,
    ReminderChanged,
    ReminderScheduled,
    SendRecorded,
    VendorCall,
    read_journal,
)
from tests.harness.journals import BASE, T0, WINDOW, Handset, journal, run_folder, scenario

PHONES = ("+8613800000001", "+8613900000002", "008613700000003", "13600000004",
          "+8613500000005")
NATIONAL_ID = "11010519900101123X"
GATES = ("continuity >= 0.99", "duplicates == 0", "p95_latency <= 1s", "missed == 0",
         "wrong_recipient == 0", "sent_to_opted_out == 0", "sent_after_repayment == 0",
         "sent_to_test_data == 0", "pii_exposed == 0", "missing_optout_notice == 0")
RUN = scenario("compliance.optout_notice=回T退订",
               text=BASE.replace("gates: [continuity >= 0.5, duplicates == 0, p95_latency <= 5s]",
                                 f"gates: [{', '.join(GATES)}]"))

_HANDSETS: tuple[Handset, ...] = ("delivered", "delivered", "delivered", "spam", "absent",
                                 "dropped")
_CHANGES: tuple[Literal["repaid", "partially_repaid"] | None, ...] = (
    None, None, "repaid", "partially_repaid")


@st.composite
def _sends(draw: st.DrawFn, ref: str, at: float, amount: str, phone: str) -> list[Event]:
    events: list[Event] = []
    for copy in range(draw(st.integers(0, 3))):
        when = at + draw(st.sampled_from([-1.0, 0.0, 0.5, 3.0, 9.0]))
        arrive = draw(st.sampled_from([0.2, 1.0, 12.0]))
        to = draw(st.sampled_from([phone, phone, phone, *PHONES]))
        shown = draw(st.sampled_from([amount, amount, "1.00"]))
        body = f"ref:{ref} amount:{shown} due:2026-12-05"
        body += draw(st.sampled_from(["", " 回T退订", f" id {NATIONAL_ID}", " 尾号0001"]))
        by_client = draw(st.booleans())
        handset = draw(st.sampled_from(_HANDSETS))
        arrived = handset in ("delivered", "spam")
        events.append(SendRecorded(
            t=T0 + when, vendor=draw(st.sampled_from(["sms", "backup"])),
            message_id=f"m-{ref}-{copy}", to=to,
            body=body.replace(f"ref:{ref}", "ref:?") if by_client else body,
            client_ref=ref if by_client else None, handset=handset,
            inbox_at=T0 + when + arrive if arrived else None))
    return events


@st.composite
def _journals(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = []
    borrowers = draw(st.integers(1, 4))
    for index in range(draw(st.integers(1, 8))):
        borrower = draw(st.integers(0, borrowers - 1))
        ref = f"r{index:07d}"
        at = draw(st.sampled_from([5.0, 20.0, 40.0, 60.0, 95.0, 115.0]))
        amount = draw(st.sampled_from(["100.00", "250.50"]))
        phone = PHONES[borrower]
        events.append(ReminderScheduled(
            t=T0 + at - 5, reminder_id=f"rem-{ref}", ref=ref, loan_id=f"L{index}",
            borrower_id=f"B{borrower}", name="王伟", phone=phone,
            national_id=NATIONAL_ID if draw(st.booleans()) else "",
            opted_out=draw(st.sampled_from([False, False, False, True])), amount=amount,
            due_date="2026-12-05", remind_at=T0 + at, send_by=T0 + at + WINDOW))
        events += draw(_sends(ref, at, amount, phone))
        change = draw(st.sampled_from(_CHANGES))
        if change is not None:
            events.append(ReminderChanged(
                t=T0 + at + draw(st.sampled_from([-3.0, 0.2, 4.0])), reminder_id=f"rem-{ref}",
                change=change, amount="0.00" if change == "repaid" else "1.00"))
    for _ in range(draw(st.integers(0, 3))):
        events.append(BorrowerChanged(
            t=T0 + draw(st.sampled_from([10.0, 30.0, 50.0])),
            borrower_id=f"B{draw(st.integers(0, borrowers - 1))}",
            phone=draw(st.sampled_from(PHONES)),
            opted_out=draw(st.sampled_from([False, False, True]))))
    for _ in range(draw(st.integers(0, 2))):
        events.append(BorrowerOptedOut(t=T0 + draw(st.sampled_from([15.0, 45.0])),
                                       phone=draw(st.sampled_from(PHONES)), vendor="sms"))
    for number in range(draw(st.integers(0, 2))):
        events.append(SendRecorded(
            t=T0 + 30 + number, vendor="sms", message_id=f"u-{number}",
            to=draw(st.sampled_from([*PHONES, "+8613000000009"])),
            body=draw(st.sampled_from(["hello", "ref:zzzzzzzz 100.00", f"id {NATIONAL_ID}"])),
            inbox_at=T0 + 31 + number))
    if draw(st.booleans()):
        events.append(FaultTouched(
            t=T0 + 2, mock="ledger", switch="test_leak", subject="rem-test",
            detail={"records": "borrowers", "ref": "zzzzzzzz", "phone": PHONES[4]}))
    for number in range(draw(st.integers(0, 3))):
        events.append(VendorCall(t=T0 + number, vendor=draw(st.sampled_from(["sms", "backup"])),
                                 status=201, outcome=draw(st.sampled_from(
                                     ["accepted", "refused", "lost", "read"])),
                                 latency=draw(st.sampled_from([0.01, 0.2, 1.5]))))
    return events


@settings(max_examples=30, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_journals(), st.sampled_from([1, 2, 3]))
def test_the_engine_scores_random_journals_as_the_pure_scorer_does(
        events: list[Event], partition: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run = run_folder(Path(folder), journal(events, end=120.0, run=RUN))
        expected = score(read_journal(run / "journal"))
        assert score_engine(run / "journal", partition).model_dump() == expected.model_dump()
