"""The engine's fast lane (`harness.plain_reminders`) judges plain reminders in SQL as the pure
judge does: random journals of many borrowers, most of them plain and some not, scored by the
engine and by the pure scorer; which reminders the lane takes; which patterns RE2 reads as
Python does."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import plain_reminders, traces
from harness.continuity import score
from harness.engine import score_engine
from harness.fold import Row
from harness.journal import (
    BorrowerChanged,
    BorrowerOptedOut,
    Event,
    ReminderChanged,
    ReminderScheduled,
    SendRecorded,
    read_journal,
)
from harness.plain_reminders import PlainVerdicts, re2_agrees
from tests.harness.journals import BASE, T0, WINDOW, Handset, journal, run_folder, scenario

NATIONAL_ID = "11010519900101123X"
ACCOUNT = "6222020909213476"
RUN = scenario("compliance.optout_notice=回T退订",
               text=BASE.replace("\\w{8}", "[a-z0-9]{8}"))
_HANDSETS: tuple[Handset, ...] = ("delivered", "delivered", "delivered", "spam", "absent",
                                 "dropped")


def _phone(index: int) -> str:
    # Its last five digits are in no reference or date of these bodies, which would make the
    # message one that might show the number (so not plain).
    return f"+86138{index:04d}5678"


@st.composite
def _sends(draw: st.DrawFn, ref: str, at: float, phone: str, others: int) -> list[Event]:
    events: list[Event] = []
    for copy in range(draw(st.integers(0, 3))):
        when = at + draw(st.sampled_from([-1.0, -0.04, 0.0, 0.5, 3.0, 9.0]))
        arrive = draw(st.sampled_from([0.2, 1.0, 12.0]))
        to = draw(st.sampled_from([phone, phone, phone, _phone(draw(st.integers(0, others)))]))
        body = f"ref:{ref} 应还 {draw(st.sampled_from(['100.00', '100.00', '1.00']))} " \
               f"due:{draw(st.sampled_from(['2026-12-05', '2026-12-05', '2026-12-06']))}"
        body += draw(st.sampled_from([" 回T退订", " 回T退订", " 回T退订", "",
                                      f" 回T退订 id {NATIONAL_ID}", " 回T退订 尾号3476",
                                      f" 回T退订 卡号{ACCOUNT[:6]}****{ACCOUNT[-4:]}"]))
        by_client = draw(st.booleans())
        handset = draw(st.sampled_from(_HANDSETS))
        arrived = handset in ("delivered", "spam")
        inbox = draw(st.sampled_from([T0 + when + arrive, T0 + when + arrive, None]))
        events.append(SendRecorded(
            t=T0 + when, vendor=draw(st.sampled_from(["sms", "backup"])),
            message_id=f"m-{ref}-{copy}", to=to,
            body=body.replace(f"ref:{ref}", "ref:?") if by_client else body,
            client_ref=ref if by_client else None, handset=handset,
            inbox_at=inbox if arrived else None))
    return events


@st.composite
def _journals(draw: st.DrawFn) -> list[Event]:
    """Borrowers with one reminder each, most of them plain; now and then one that is not (a
    phone change, an opt-out, a repayment, a reminder scheduled twice, a shared number, a send
    that correlates with nothing)."""
    events: list[Event] = []
    count = draw(st.integers(1, 12))
    for index in range(count):
        ref = f"r{index:07d}"
        at = draw(st.sampled_from([5.0, 20.0, 40.0, 60.0, 95.0, 115.0]))
        phone = _phone(draw(st.sampled_from([index] * 9 + [0])))
        scheduled = ReminderScheduled(
            t=T0 + at - 5, reminder_id=f"rem-{ref}", ref=ref, loan_id=f"L{index}",
            borrower_id=f"B{index}", name="王伟", phone=phone,
            national_id=draw(st.sampled_from([NATIONAL_ID, ""])),
            account=draw(st.sampled_from([ACCOUNT, ""])), amount="100.00",
            due_date="2026-12-05", remind_at=T0 + at, send_by=T0 + at + WINDOW)
        events.append(scheduled)
        events += draw(_sends(ref, at, phone, count))
        odd = draw(st.sampled_from([None] * 12 + ["change", "stop", "repaid", "twice",
                                                  "stray"]))
        if odd == "change":
            events.append(BorrowerChanged(t=T0 + at, borrower_id=f"B{index}",
                                          phone=_phone(index + 100), opted_out=False))
        elif odd == "stop":
            events.append(BorrowerOptedOut(t=T0 + at - 3, phone=phone, vendor="sms"))
        elif odd == "repaid":
            events.append(ReminderChanged(t=T0 + at - 3, reminder_id=f"rem-{ref}",
                                          change="repaid", amount="0.00"))
        elif odd == "twice":
            events.append(scheduled.model_copy(update={"t": T0 + at - 4}))
        elif odd == "stray":
            events.append(SendRecorded(t=T0 + at, vendor="sms", message_id=f"u-{index}",
                                       to=phone, body="hello", inbox_at=T0 + at + 1))
    return events


@dataclass(frozen=True)
class _Taken:
    """The settled reminders the lane gave in one scoring."""

    rows: list[Row]


@pytest.fixture
def taken() -> Iterator[list[_Taken]]:
    """What the lane judged in each scoring, with one trace kept (so that the lane is left
    most reminders of a small journal, rather than handing the worst 20 to the pure judge)."""
    found: list[_Taken] = []
    verdicts = plain_reminders.verdicts

    def recorded(con: Any, add: Callable[..., None]) -> PlainVerdicts:
        rows: list[Row] = []

        def adding(*values: Any) -> None:
            if values[3]:  # settled
                rows.append(Row(*values))
            add(*values)

        found.append(_Taken(rows))
        return verdicts(con, adding)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plain_reminders, "verdicts", recorded)
        patch.setattr(plain_reminders, "WORST", 1)
        patch.setattr(traces, "WORST", 1)
        yield found


def _both(events: list[Event], partition: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        run = run_folder(Path(folder), journal(events, end=120.0, run=RUN))
        expected = score(read_journal(run / "journal"))
        return score_engine(run / "journal", partition).model_dump(), expected.model_dump()


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(_journals(), st.sampled_from([1, 3]))
def test_the_lane_judges_random_journals_as_the_pure_scorer_does(
        taken: list[_Taken], events: list[Event], partition: int) -> None:
    engine, pure = _both(events, partition)
    assert engine == pure


def test_the_lane_takes_the_plain_borrowers_and_leaves_the_others(
        taken: list[_Taken]) -> None:
    on_time = [_scheduled(index) for index in range(6)]
    sends = [_send(index, f"ref:r{index:07d} 应还 100.00 due:2026-12-05 回T退订")
             for index in range(6)]
    events: list[Event] = [*on_time, *sends,
                           # not plain: a phone change, a message that shows the national id
                           BorrowerChanged(t=T0 + 30, borrower_id="B1", phone=_phone(101),
                                           opted_out=False),
                           _send(2, f"ref:r0000002 100.00 2026-12-05 回T退订 {NATIONAL_ID}")]
    engine, pure = _both(events)
    assert engine == pure
    assert engine["outcomes"]["on_time"] == 6 and engine["pii_exposed"] == 1
    (verdicts,) = taken
    # B1 and B2 go to the pure judge, and so does the one reminder traced (all on time, as
    # late as each other: the first due).
    taken_ids = sorted(row.reminder_id for row in verdicts.rows)
    assert taken_ids == [f"rem-r{index:07d}" for index in (3, 4, 5)]


def _scheduled(index: int) -> ReminderScheduled:
    at = 10.0 + index
    return ReminderScheduled(
        t=T0 + at - 5, reminder_id=f"rem-r{index:07d}", ref=f"r{index:07d}",
        loan_id=f"L{index}", borrower_id=f"B{index}", name="王伟", phone=_phone(index),
        national_id=NATIONAL_ID, account=ACCOUNT, amount="100.00", due_date="2026-12-05",
        remind_at=T0 + at, send_by=T0 + at + WINDOW)


def _send(index: int, body: str) -> SendRecorded:
    at = 10.5 + index
    return SendRecorded(t=T0 + at, vendor="sms", message_id=f"m-{index}-{len(body)}",
                        to=_phone(index), body=body, inbox_at=T0 + at + 0.5)


@pytest.mark.parametrize(("pattern", "agrees"), [
    ("ref:(?P<ref>[A-Z0-9]{8})", True),
    ("回T退订|reply STOP", True),
    ("(?:ref|REF)[:=] ?(?P<ref>[a-z0-9]+)", True),
    ("a.b*?c", True),
    (r"ref:(?P<ref>\w{8})", False),  # \w is Unicode in Python, ASCII in RE2
    (r"\d+", False),
    ("STOP$", False),  # Python's $ also matches before a final newline
    ("(?i)stop", False),
    ("(?=ref)ref", False),
    ("[^a]", False),
    ("a{1001}", False),
    ("(", False),
])
def test_re2_is_trusted_only_with_patterns_it_reads_as_python_does(
        pattern: str, agrees: bool) -> None:
    assert re2_agrees(pattern) is agrees
