"""The borrower app's figures: how the opens Locust journaled (`app.opened`) were answered, and
whether each answer showed the truth of its moment.

Rules:

- An open is answered when the app gave a 200 with the borrower's view (`status` 200: an
  installment, or none due); no answer, an error status or a body cut short is not.
- The truth is rebuilt from the ledger's `reminder.scheduled` and `reminder.changed` events:
  the borrower's next installment is their latest scheduled reminder not yet repaid in full,
  with its amount as of then (a partial repayment lowers it), and its due date; none when every
  reminder of theirs was repaid.
- An answer is correct when it equals the truth at some moment while the open was under way
  (from its `t` to `t + latency`): the ledger answered at one of them. Journal times are whole
  milliseconds, so the span is widened by one on each side.
- `*_in_faults` count the opens begun within a fault window `[applied, reverted)`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.journal import AppOpened, Journal, ReminderChanged, ReminderScheduled
from harness.scorecard import AppFigures

_SLACK = 0.001
"""Seconds each side of an open's span: the ledger journals its times in whole milliseconds."""

View = tuple[str, str, str] | None
"""What the app shows: (reminder id, amount, due date) of the next installment, or none due."""


@dataclass
class _Reminder:
    """One reminder's truth over time (local to this module)."""

    scheduled: ReminderScheduled
    amounts: list[tuple[float, str]] = field(default_factory=list)
    repaid: float = math.inf

    def at(self, moment: float) -> str | None:
        """Its amount due at `moment`; None before it was scheduled or once repaid."""
        if not self.scheduled.t <= moment < self.repaid:
            return None
        amount = self.scheduled.amount
        for t, changed in self.amounts:
            if t <= moment:
                amount = changed
        return amount


def _truths(journal: Journal) -> dict[str, list[_Reminder]]:
    """Each borrower's reminders, in the order they were scheduled."""
    reminders: dict[str, _Reminder] = {}
    for event in journal.of(ReminderScheduled):
        # A repeated schedule is not news: the first is the truth.
        reminders.setdefault(event.reminder_id, _Reminder(event))
    for change in journal.of(ReminderChanged):
        reminder = reminders.get(change.reminder_id)
        if reminder is None:
            continue
        if change.change == "repaid":
            reminder.repaid = min(reminder.repaid, change.t)
        else:
            reminder.amounts.append((change.t, change.amount))
    by_borrower: dict[str, list[_Reminder]] = defaultdict(list)
    for reminder in reminders.values():
        by_borrower[reminder.scheduled.borrower_id].append(reminder)
    return by_borrower


def _truth_at(reminders: Sequence[_Reminder], moment: float) -> View:
    for reminder in reversed(reminders):
        amount = reminder.at(moment)
        if amount is not None:
            return reminder.scheduled.reminder_id, amount, reminder.scheduled.due_date
    return None


def _moments(reminders: Sequence[_Reminder], start: float, end: float) -> list[float]:
    """`start`, and every moment in (start, end] when the borrower's truth changed."""
    changes = [moment for reminder in reminders
               for moment in (reminder.scheduled.t, reminder.repaid,
                              *(t for t, _ in reminder.amounts))]
    return [start, *(moment for moment in changes if start < moment <= end)]


def _correct(opened: AppOpened, reminders: Sequence[_Reminder]) -> bool:
    shown: View = None
    if opened.reminder_id is not None:
        shown = (opened.reminder_id, opened.amount or "", opened.due_date or "")
    start, end = opened.t - _SLACK, opened.t + opened.latency + _SLACK
    return any(_truth_at(reminders, moment) == shown
               for moment in _moments(reminders, start, end))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def app_figures(journal: Journal, windows: Sequence[tuple[float, float]]) -> AppFigures | None:
    """The app's figures over the run's opens (see the module's rules); `windows` are the fault
    steps' [applied, reverted) times in epoch seconds. None when nobody opened the app."""
    opens = journal.of(AppOpened)
    if not opens:
        return None
    truths = _truths(journal)
    answered = [opened for opened in opens if opened.status == 200]
    correct = sum(_correct(opened, truths.get(opened.borrower_id, ())) for opened in answered)
    faulted = [opened for opened in opens
               if any(applied <= opened.t < reverted for applied, reverted in windows)]
    answered_in_faults = sum(opened.status == 200 for opened in faulted)
    return AppFigures(
        opens=len(opens), answered=len(answered), correct=correct,
        opens_in_faults=len(faulted), answered_in_faults=answered_in_faults,
        availability=_share(len(answered), len(opens)),
        correctness=_share(correct, len(answered)),
        availability_in_faults=_share(answered_in_faults, len(faulted)))
