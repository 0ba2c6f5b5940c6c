"""The scorer as a whole: a pure function from a journal to a complete scorecard, with the
worst reminders' traces for the report."""

from __future__ import annotations

import pytest

from harness.continuity import score
from harness.errors import JournalError
from harness.journal import Journal
from harness.scorecard import Scorecard
from tests.harness.journals import (
    OTHER_PHONE,
    journal,
    owed,
    phone_changed,
    sent,
    step,
)


def test_a_journal_without_a_start_cannot_be_scored() -> None:
    with pytest.raises(JournalError, match=r"no run\.started"):
        score(Journal((owed("AAAAAAAA", 0),)))


def test_a_journal_without_an_end_is_unfinished_and_not_judged() -> None:
    whole = journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1))
    cut = Journal(tuple(e for e in whole.events if e.kind != "run.ended"))
    card = score(cut)
    assert (card.status, card.ended_at, card.verdict) == ("unfinished", None, "not_judged")
    assert card.outcomes["on_time"] == 1


def test_scoring_is_a_pure_function_of_the_journal() -> None:
    run = journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), owed("BBBBBBBB", 3))
    events = [event.model_copy() for event in run.events]
    assert score(run) == score(run)
    assert list(run.events) == events


def test_the_scorecard_round_trips_through_json() -> None:
    card = score(journal(step(0, "proxy.down", "vendors.sms", 2, 5), owed("AAAAAAAA", 0),
                         sent("AAAAAAAA", 1), owed("BBBBBBBB", 3)))
    assert Scorecard.model_validate_json(card.model_dump_json()) == card


def test_the_worst_reminders_come_first_each_with_its_attempts() -> None:
    card = score(journal(
        step(0, "proxy.down", "vendors.sms", 20, 30),
        owed("AAAAAAAA", 15), sent("AAAAAAAA", 16, arrive=0.5),              # on time, fast
        owed("BBBBBBBB", 15), sent("BBBBBBBB", 16, arrive=4),                # on time, slower
        owed("CCCCCCCC", 18), sent("CCCCCCCC", 21, handset="dropped"),       # missed
        sent("CCCCCCCC", 29, arrive=1, vendor="backup"),                     # late
        owed("DDDDDDDD", 22), sent("DDDDDDDD", 23, handset="dropped"),       # missed
        phone_changed(40, OTHER_PHONE),
        owed("EEEEEEEE", 45, phone=OTHER_PHONE, scheduled=41), sent("EEEEEEEE", 45),
        load=10))
    assert [(t.ref, t.outcome) for t in card.worst] == [
        ("DDDDDDDD", "missed"), ("EEEEEEEE", "wrong_recipient"), ("CCCCCCCC", "late"),
        ("BBBBBBBB", "on_time"), ("AAAAAAAA", "on_time")]
    late = card.worst[2]
    assert (late.remind_at, late.send_by) == (8.0, 18.0)  # from the start of load
    assert [(a.t, a.vendor, a.handset, a.inbox_at, a.faults, a.verdict)
            for a in late.attempts] == [
        (11.0, "sms", "dropped", None, ["step 0 proxy.down"], "dropped by the vendor"),
        (19.0, "backup", "delivered", 20.0, ["step 0 proxy.down"],
         "late: arrived 2.00 s after send_by")]
    assert late.why == "arrived 12.00 s after remind_at, 2.00 s after its window closed"
    assert card.worst[0].why == "1 sent, all dropped by the vendor: none arrived"
    assert card.worst[1].why == ("sent to +8613800000001, the borrower's number until 30.0 s "
                                 f"(now {OTHER_PHONE})")
    assert card.worst[4].why == "arrived 1.50 s after remind_at, within its 10 s window"


def test_at_most_twenty_reminders_are_traced() -> None:
    card = score(journal(*(owed(f"R{i:07d}", i) for i in range(30))))
    assert len(card.worst) == 20
    assert {t.why for t in card.worst} == {"nothing was sent"}
