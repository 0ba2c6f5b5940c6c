"""Timing figures of the judged reminders: latency percentiles, the backlog, the longest
blackout, recovery after a fault, and the run as one sample per second.

Rules:

- Latency: `inbox_at - remind_at` over the on-time and late reminders (nearest rank).
- The backlog holds only reminders someone could deliver: owed reminders whose outcome is
  filtered or unreachable are left out (the spam folder and a phone that is off are nobody's
  backlog). A reminder is in it from `remind_at` until its first correct delivery (on time or
  late), or until the window of its last allowed channel closes (SMS alone: `send_by`) if none
  came.
- Longest blackout: the longest interval during which some reminder was due and not yet
  delivered on time, and none was delivered on time. Only on-time deliveries end a blackout;
  sends that are late, wrong or filtered do not.
- Owed over time: the reminders that fell due (`remind_at`) in each calendar day of a
  compressed month, or in each bucket of a few seconds (at most 60 buckets) without one.
- Recovery after a step: seconds after the step ended until the backlog is back to its typical
  size before the step (its median at the moments reminders fell due before it); None if never.
"""

from __future__ import annotations

import bisect
import heapq
import math
import statistics
from collections.abc import Sequence

from harness.load_shapes import DAY
from harness.scorecard import Bucket, Calendar, Latency, Sample

_BUCKETS = 60
"""At most this many buckets of seconds in a run without a month."""


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank `p` percentile (0..1) of `values`, rounded to the millisecond."""
    return _ranked(sorted(values), p)


def _ranked(ordered: Sequence[float], p: float) -> float | None:
    """`percentile` of values already in order."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 3)


def latency(ordered: Sequence[float]) -> Latency:
    """p50/p95/p99 of `inbox_at - remind_at` over the reminders delivered correctly, given
    those values in order."""
    return Latency(p50=_ranked(ordered, 0.50), p95=_ranked(ordered, 0.95),
                   p99=_ranked(ordered, 0.99))


def deliverable(outcome: str) -> bool:
    """Whether a notifier could have delivered a reminder of this outcome (not filtered, not
    at a phone that was off)."""
    return outcome not in ("filtered", "unreachable")


class Backlog:
    """How many deliverable owed reminders wait at any moment."""

    def __init__(self, due: Sequence[float], out: Sequence[float]) -> None:
        """`due`: the deliverable reminders' `remind_at`, in order; `out`: their
        `waited_until`, in order."""
        self._due = due
        self._out = out

    def at(self, t: float) -> int:
        """The backlog just after time `t`."""
        return bisect.bisect_right(self._due, t) - bisect.bisect_right(self._out, t)

    def recovery(self, start: float, end: float) -> float | None:
        """Seconds after `end` until the backlog is back to its typical size before `start`
        (its median at the moments reminders fell due before it); None if never."""
        before = [self.at(t) for t in self._due if t < start]
        steady = statistics.median(before) if before else 0
        if self.at(end) <= steady:
            return 0.0
        back = next((t for t in self._out if t > end and self.at(t) <= steady), None)
        return None if back is None else round(back - end, 3)


def longest_blackout(due: Sequence[float], delivered: Sequence[float],
                     expired: Sequence[float]) -> float:
    """The longest stretch with a reminder due and not yet delivered on time, during which
    none was delivered on time. Of the deliverable reminders, in order: `due` their
    `remind_at`, `delivered` the inbox times of those on time, `expired` the `closes` of the
    others."""
    due_mark, delivered_mark, expired_mark = 0, 1, 2
    # The marks in the order sorting them as (time, kind) pairs would give.
    marks = heapq.merge(((when, due_mark) for when in due),
                        ((when, delivered_mark) for when in delivered),
                        ((when, expired_mark) for when in expired))
    pending, since, longest = 0, 0.0, 0.0
    for when, what in marks:
        if what == due_mark:
            since = when if pending == 0 else since
            pending += 1
            continue
        pending -= 1
        if what == delivered_mark or pending == 0:
            longest = max(longest, when - since)
            since = when
    return round(longest, 3)


def series(due: Sequence[float], on_time: Sequence[float], backlog: Backlog, t0: float,
           end: float) -> list[Sample]:
    """One sample per second from `t0` (the start of load) to `end`; `due` the reminders'
    `remind_at` in order, `on_time` the inbox times of those on time, in order."""
    samples = []
    for second in range(int(max(0.0, end - t0)) + 1):
        t = t0 + second
        samples.append(Sample(t=float(second), due=bisect.bisect_right(due, t),
                              on_time=bisect.bisect_right(on_time, t), backlog=backlog.at(t)))
    return samples


def owed_over_time(due: Sequence[float], t0: float, end: float,
                   calendar: Calendar | None = None) -> list[Bucket]:
    """The reminders that fell due in each calendar day of `calendar` (the day's date as its
    label) or, without one, in each bucket of 1, 2, 5, 10, ... seconds, from `t0` (the start
    of load) to `end`; `due` their `remind_at`, in order."""
    span = max(end - t0, 1.0)

    def since(at: float) -> float:
        return at - t0

    if calendar is None:
        size = next(step * 10 ** power for power in range(12) for step in (1, 2, 5)
                    if span / (step * 10 ** power) <= _BUCKETS)
        edges = [(i * size, min((i + 1) * size, span), "")
                 for i in range(math.ceil(span / size))]
    else:
        first = calendar.start.replace(hour=0, minute=0, second=0, microsecond=0)
        edges = []
        day = 0
        while (start := ((first - calendar.start).total_seconds() + day * DAY)
               / calendar.speed) < span:
            label = calendar.at(max(start, 0.0))
            edges.append((max(start, 0.0), min(start + DAY / calendar.speed, span),
                          f"{label:%b} {label.day}"))
            day += 1
    return [Bucket(start=round(start, 3), end=round(stop, 3),
                   owed=bisect.bisect_left(due, stop, key=since)
                   - bisect.bisect_left(due, start, key=since), label=label)
            for start, stop, label in edges]
