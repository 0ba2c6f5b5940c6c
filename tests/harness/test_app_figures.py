"""The app's figures on hand-made journals with known answers: which opens were answered, which
answers showed the truth of their moment, and which opens fell within a fault window."""

from __future__ import annotations

import math

from harness.app_figures import app_figures
from harness.journal import AppOpened, Event, ReminderChanged
from tests.harness.journals import T0, journal, owed

# Borrower B1: reminder A (100.00) from 0 s, reminder B (200.00) from 10 s; B partly repaid
# (50.00 left) at 20 s and repaid in full at 30 s; A repaid at 40 s.
HISTORY: list[Event] = [
    owed("AAAAAAAA", at=60, scheduled=0, amount="100.00"),
    owed("BBBBBBBB", at=60, scheduled=10, amount="200.00"),
    ReminderChanged(t=T0 + 20, reminder_id="rem-BBBBBBBB", change="partially_repaid",
                    amount="50.00"),
    ReminderChanged(t=T0 + 30, reminder_id="rem-BBBBBBBB", change="repaid", amount="0.00"),
    ReminderChanged(t=T0 + 40, reminder_id="rem-AAAAAAAA", change="repaid", amount="0.00"),
]


def shown(at: float, reminder: str | None, amount: str = "", latency: float = 0.0,
          due_date: str = "2026-12-05", borrower: str = "B1") -> AppOpened:
    """An open at `at` answered with `reminder` at `amount` (None: no installment due)."""
    if reminder is None:
        return AppOpened(t=T0 + at, borrower_id=borrower, status=200, latency=latency)
    return AppOpened(t=T0 + at, borrower_id=borrower, status=200, latency=latency,
                     reminder_id=f"rem-{reminder}", amount=amount, due_date=due_date)


def unanswered(at: float, status: int | None = None) -> AppOpened:
    return AppOpened(t=T0 + at, borrower_id="B1", status=status, latency=5.0)


def correct(*opens: AppOpened) -> int:
    figures = app_figures(journal(*HISTORY, *opens), [])
    assert figures is not None
    return figures.correct


def test_nobody_opened_the_app_no_figures() -> None:
    assert app_figures(journal(*HISTORY), [(T0, T0 + 10)]) is None


def test_availability_counts_the_opens_answered_with_a_view() -> None:
    figures = app_figures(journal(*HISTORY, shown(5, "AAAAAAAA", "100.00"), shown(45, None),
                                  shown(15, "AAAAAAAA", "100.00"), unanswered(50),
                                  unanswered(51, status=503)), [])

    assert figures is not None
    assert (figures.opens, figures.answered, figures.correct) == (5, 3, 2)
    assert figures.availability == 0.6
    assert figures.correctness == 0.666667


def test_the_view_is_the_latest_reminder_not_repaid_with_its_amount_then() -> None:
    assert correct(shown(5, "AAAAAAAA", "100.00")) == 1
    assert correct(shown(5, "BBBBBBBB", "200.00")) == 0  # not scheduled yet
    assert correct(shown(15, "BBBBBBBB", "200.00")) == 1
    assert correct(shown(15, "AAAAAAAA", "100.00")) == 0  # B is the latest
    assert correct(shown(25, "BBBBBBBB", "50.00")) == 1
    assert correct(shown(25, "BBBBBBBB", "200.00")) == 0  # the amount before the repayment
    assert correct(shown(35, "AAAAAAAA", "100.00")) == 1  # B repaid: A is next again
    assert correct(shown(35, "BBBBBBBB", "50.00")) == 0
    assert correct(shown(45, None)) == 1  # all repaid: none due
    assert correct(shown(45, "AAAAAAAA", "100.00")) == 0
    assert correct(shown(5, None)) == 0
    assert correct(shown(5, "AAAAAAAA", "100.00", due_date="2026-12-06")) == 0
    assert correct(shown(5, "AAAAAAAA", "100.00", borrower="B2")) == 0
    assert correct(shown(5, None, borrower="B2")) == 1  # nothing of B2's is in the journal


def test_an_answer_may_show_any_moment_while_the_open_was_under_way() -> None:
    # B is repaid at 30 s: an open from 29.9 s to 30.1 s may show either side of it.
    assert correct(shown(29.9, "BBBBBBBB", "50.00", latency=0.2)) == 1
    assert correct(shown(29.9, "AAAAAAAA", "100.00", latency=0.2)) == 1
    assert correct(shown(29.0, "AAAAAAAA", "100.00", latency=0.2)) == 0
    # Journal times are whole milliseconds: a millisecond's slack each side, no more.
    assert correct(shown(9.9995, "BBBBBBBB", "200.00")) == 1
    assert correct(shown(9.99, "BBBBBBBB", "200.00")) == 0


def test_opens_in_faults_are_those_begun_within_a_window() -> None:
    opens = [shown(9.99, "AAAAAAAA", "100.00"), shown(10, "BBBBBBBB", "200.00"),
             unanswered(19.99), shown(20, "BBBBBBBB", "50.00"), unanswered(50),
             shown(55, None)]
    figures = app_figures(journal(*HISTORY, *opens), [(T0 + 50, math.inf), (T0 + 10, T0 + 20)])

    assert figures is not None
    assert (figures.opens_in_faults, figures.answered_in_faults) == (4, 2)
    assert figures.availability_in_faults == 0.5
    assert figures.availability == 0.666667


def test_no_open_in_a_fault_and_no_answer_give_no_shares() -> None:
    figures = app_figures(journal(*HISTORY, unanswered(5)), [(T0 + 50, T0 + 60)])

    assert figures is not None
    assert (figures.answered, figures.opens_in_faults) == (0, 0)
    assert (figures.availability, figures.correctness, figures.availability_in_faults) == (
        0.0, None, None)
