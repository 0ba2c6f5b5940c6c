"""When a run's drain may end: every reminder is decided and the mocks have gone quiet.

After load a run watches for late reminders. Waiting the whole reminder window (lead + the
longest channel window) when nothing is outstanding only makes runs longer, so by default the
drain ends as soon as, read from the growing journal:

- every reminder has fallen due (its remind_at passed) and is decided: delivered correctly
  on some channel, or not owed (cancelled, opted out);
- nothing was sent, answered or replied for `quiet_for(scenario)` seconds (8 s, more when a
  step holds calls up), so that a duplicate, a resend after a delivery report or a STOP reply
  still in flight is seen.

A reminder still undelivered keeps the drain going until its window closes, as before; a
scenario that gives `drain` explicitly is watched exactly that long.

Judging the whole journal costs seconds at a thousand reminders a second, so each poll first
reads only the lines appended since the last (`Watch`) and judges the journal only once
those say the run may be over: a reminder scheduled, none still to fall due, the mocks quiet.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path

from harness.continuity import judge_run
from harness.errors import JournalError
from harness.faults import FAULTS
from harness.journal import BorrowerOptedOut, SendRecorded, VendorCall, read_journal
from harness.scenario import Scenario
from harness.tail import JournalTail, kind_of

QUIET = 8.0
"""Seconds without a send, a vendor call or a reply before a decided run may end: longer than
a notifier's usual backoff before a resend (the reference's is at most 5 s), so that a
duplicate sent after a lost answer is still seen."""


def quiet_for(scenario: Scenario) -> float:
    """How long the mocks must be quiet: QUIET, or longer than the handsets take to reply
    STOP (a reply after the last delivery must still reach the notifier and be seen), plus
    the longest time a step holds a call or a report up (a send held by `vendor.latency`
    is journaled only when it is answered)."""
    held = max((float(value) * FAULTS[step.fault].times[name]
                for step in scenario.timeline for name, value in step.params.items()
                if name in FAULTS[step.fault].times and isinstance(value, int | float)),
               default=0.0)
    return max(QUIET, scenario.handsets.stop_after + 1.0) + held


def decided(journal_dir: Path, scenario: Scenario, now: float) -> bool:
    """Whether the run whose journal is `journal_dir` has nothing left to wait for at `now`
    (epoch seconds)."""
    try:
        journal = read_journal(journal_dir)
        judgement = judge_run(journal)
    except JournalError:
        return False
    if not judgement.reminders:
        return False
    activity = [event.t for event in journal.events
                if isinstance(event, SendRecorded | VendorCall | BorrowerOptedOut)]
    if activity and now - max(activity) < quiet_for(scenario):
        return False
    return all(judged.remind_at <= now and (judged.decisive is not None or not judged.owed)
               for judged in judgement.reminders)


_ACTIVITY = frozenset({"send.recorded", "vendor.call", "borrower.opted_out"})
"""The kinds of SendRecorded, VendorCall and BorrowerOptedOut: what keeps the mocks busy."""
_SCHEDULED = "reminder.scheduled"


class Watch:
    """What `decided` needs first, kept up from the lines appended to the journal since the
    last look (no line is validated): whether a reminder was scheduled, the latest remind_at,
    the latest activity. Where it says no, `decided` says no too; where it says maybe, only
    `decided` can tell."""

    def __init__(self, journal_dir: Path) -> None:
        self._tail = JournalTail(journal_dir)
        self._scheduled = False
        self._last_due = -math.inf
        self._last_activity = -math.inf

    def may_be_decided(self, scenario: Scenario, now: float) -> bool:
        """False when the run surely has something left to wait for at `now`."""
        try:
            lines = self._tail.lines()
        except OSError:
            return True  # `decided` reads the folder itself, and says what it finds
        for line in lines:
            kind = kind_of(line)
            if kind is not None and kind != _SCHEDULED and kind not in _ACTIVITY:
                continue
            try:
                if kind == _SCHEDULED:
                    self._scheduled = True
                    self._last_due = max(self._last_due, _number(line, _REMIND_AT))
                elif kind is not None:
                    self._last_activity = max(self._last_activity, _number(line, _T))
                else:
                    self._take(json.loads(line))
            except (ValueError, TypeError, KeyError):
                continue  # a line the journal's reader refuses: `decided` will
        return (self._scheduled and self._last_due <= now
                and now - self._last_activity >= quiet_for(scenario))


    def _take(self, event: dict[str, object]) -> None:
        """A line spelt otherwise than a journal writer spells it, parsed."""
        kind = event["kind"]
        if kind == _SCHEDULED:
            self._scheduled = True
            self._last_due = max(self._last_due, float(str(event["remind_at"])))
        elif kind in _ACTIVITY:
            self._last_activity = max(self._last_activity, float(str(event["t"])))


_T = b'{"t":'
_REMIND_AT = b',"remind_at":'


def _number(line: bytes, key: bytes) -> float:
    """The number after `key` in a journal writer's line (its first `"t"`, say: a send's line
    is mostly its body, which parsing it whole would cost); ValueError if it is not there."""
    found = _NUMBER.match(line, line.index(key) + len(key))
    if found is None:
        raise ValueError(f"no number after {key!r}")
    return float(found.group())


_NUMBER = re.compile(rb"[-+0-9.eE]+")


def drain(scenario: Scenario, journal_dir: Path, *, poll: float = 1.0,
          clock: Callable[[], float] = time.time,
          sleep: Callable[[float], None] = time.sleep) -> float:
    """Watch for late reminders: `scenario.drain` seconds when given, else until `decided`
    (at most `scenario.drain_seconds`). Returns the seconds watched."""
    began = clock()
    deadline = began + scenario.drain_seconds
    if scenario.drain is not None:
        sleep(scenario.drain)
        return clock() - began
    interval = poll
    watch = Watch(journal_dir)
    while clock() < deadline:
        sleep(min(interval, max(0.0, deadline - clock())))
        checked = clock()
        if watch.may_be_decided(scenario, checked) and decided(journal_dir, scenario, checked):
            break
        # A long journal takes a while to judge: the watch must not cost more than the run.
        interval = max(poll, 2 * (clock() - checked))
    return clock() - began
