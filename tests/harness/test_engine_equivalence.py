"""The scorer's engine gives the pure scorer's scorecard: random journals (on time, late, early,
missed, duplicates, wrong recipient and content, uncorrelated sends, phone changes, opt-outs,
repayments, leaked test data, personal data), judged in one partition and in several; and
journals of many plain borrowers under fault steps, a maintenance window and a data fault,
which the fast lane adds up in SQL."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import plain_reminders, traces
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
from tests.harness.journals import (
    BASE,
    OTHER_PHONE,
    T0,
    WINDOW,
    Handset,
    journal,
    owed,
    run_folder,
    scenario,
    sent,
    step,
)

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


FAULTED = scenario(
    "duration=120s",
    "timeline=[{at: 30s, for: 30s, fault: proxy.down, link: vendors.sms},"
    " {at: 40s, for: 20s, fault: process.stop, link: target},"
    " {at: 70s, for: 10s, fault: data.drift, link: ledger, params: {field: amount}},"
    " {at: 90s, fault: process.restart, link: target}]",
    "gates=[continuity >= 1, late == 0, missed == 0, wrong_recipient == 0, duplicates == 0,"
    " p95_latency <= 0s, p99_latency <= 0s]",
    text=BASE.replace("\\w{8}", "[A-Z0-9]{8}"))  # a pattern the lane trusts RE2 with


def _faulted(seed: int) -> list[Event]:
    """About 120 borrowers of a reminder each, on time, late, missed, duplicated, filtered or
    sent to a wrong number, across the steps of `FAULTED`, drawn from `seed`."""
    draw = random.Random(seed)
    events: list[Event] = [
        *step(0, "proxy.down", "vendors.sms", 30, 60), *step(1, "process.stop", "target", 40, 60),
        *step(2, "data.drift", "ledger", 70, 80, {"field": "amount"}),
        *step(3, "process.restart", "target", 90, None)]
    for index in range(120):
        ref = f"R{index:07d}"
        at = round(draw.uniform(1, 110), 3)
        phone = f"+86137{index:04d}8888"  # its last digits in no message (personal data)
        events.append(owed(ref, at, borrower=f"B{index}", phone=phone))
        kind = draw.choice(["on_time", "on_time", "on_time", "late", "missed", "twice", "spam",
                            "wrong"])
        if kind == "on_time":
            events.append(sent(ref, at + draw.uniform(0, 5), to=phone,
                               arrive=draw.uniform(0, 3)))
        elif kind == "late":
            events.append(sent(ref, at + 12, to=phone, arrive=draw.uniform(0, 9)))
        elif kind == "twice":
            events += [sent(ref, at + 1, to=phone), sent(ref, at + 2, to=phone)]
        elif kind == "spam":
            events.append(sent(ref, at + 1, to=phone, handset="spam"))
        elif kind == "wrong":
            events.append(sent(ref, at + 1, to=OTHER_PHONE))
        if 70 <= at <= 80 and draw.random() < 0.5:
            events.append(FaultTouched(t=T0 + at, mock="ledger", switch="drift",
                                       subject=f"rem-{ref}", detail={"field": "amount"}))
    return events


def test_the_lane_adds_up_exposed_reminders_as_the_pure_scorer_does() -> None:
    exposed: list[int] = []
    taken = [0]
    rows = plain_reminders.exposures

    def counted(con: duckdb.DuckDBPyConnection, expose: Callable[..., None]) -> None:
        def one(*values: object) -> None:
            taken[0] += 1
            expose(*values)

        exposed.append(1)
        rows(con, one)

    for seed in (1, 2, 3):
        with tempfile.TemporaryDirectory() as folder, \
                pytest.MonkeyPatch.context() as patch:
            patch.setattr(plain_reminders, "exposures", counted)
            # One trace kept: the lane keeps the slowest reminders and the other witnesses.
            patch.setattr(plain_reminders, "WORST", 1)
            patch.setattr(traces, "WORST", 1)
            run = run_folder(Path(folder), journal(_faulted(seed), end=130.0, run=FAULTED))
            expected = score(read_journal(run / "journal"))
            assert sum(row.exposed for row in expected.faults) > 0
            assert expected.delivered_after_maintenance is not None
            assert score_engine(run / "journal", 40).model_dump() == expected.model_dump()
    assert len(exposed) == 3 and taken[0] > 300  # the lane took most reminders
