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
import math
import statistics
from collections.abc import Sequence

from harness.judging import Judged
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


def latency(reminders: Sequence[Judged]) -> Latency:
    """p50/p95/p99 of `inbox_at - remind_at` over the reminders delivered correctly."""
    ordered = sorted(lat for judged in reminders if (lat := judged.latency) is not None)
    return Latency(p50=_ranked(ordered, 0.50), p95=_ranked(ordered, 0.95),
                   p99=_ranked(ordered, 0.99))


def deliverable(reminders: Sequence[Judged]) -> list[Judged]:
    """The reminders a notifier could have delivered (not filtered, not at a phone that was
    off)."""
    return [judged for judged in reminders if judged.outcome not in ("filtered", "unreachable")]


class Backlog:
    """How many deliverable owed reminders wait at any moment."""

    def __init__(self, reminders: Sequence[Judged]) -> None:
        waiting = deliverable(reminders)
        self._due = sorted(judged.remind_at for judged in waiting)
        self._out = sorted(judged.waited_until for judged in waiting)

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


def longest_blackout(reminders: Sequence[Judged]) -> float:
    """The longest stretch with a reminder due and not yet delivered on time, during which
    none was delivered on time."""
    due, delivered, expired = 0, 1, 2
    marks: list[tuple[float, int]] = []
    for judged in deliverable(reminders):
        marks.append((judged.remind_at, due))
        arrived = judged.delivered_at
        if judged.outcome == "on_time" and arrived is not None:
            marks.append((arrived, delivered))
        else:
            marks.append((judged.closes, expired))
    pending, since, longest = 0, 0.0, 0.0
    for when, what in sorted(marks):
        if what == due:
            since = when if pending == 0 else since
            pending += 1
            continue
        pending -= 1
        if what == delivered or pending == 0:
            longest = max(longest, when - since)
            since = when
    return round(longest, 3)


def series(reminders: Sequence[Judged], backlog: Backlog, t0: float, end: float
           ) -> list[Sample]:
    """One sample per second from `t0` (the start of load) to `end`."""
    due = sorted(judged.remind_at for judged in reminders)
    on_time = sorted(arrived for judged in reminders if judged.outcome == "on_time"
                     and (arrived := judged.delivered_at) is not None)
    samples = []
    for second in range(int(max(0.0, end - t0)) + 1):
        t = t0 + second
        samples.append(Sample(t=float(second), due=bisect.bisect_right(due, t),
                              on_time=bisect.bisect_right(on_time, t), backlog=backlog.at(t)))
    return samples


def owed_over_time(reminders: Sequence[Judged], t0: float, end: float,
                   calendar: Calendar | None = None) -> list[Bucket]:
    """The reminders that fell due in each calendar day of `calendar` (the day's date as its
    label) or, without one, in each bucket of 1, 2, 5, 10, ... seconds, from `t0` (the start
    of load) to `end`."""
    span = max(end - t0, 1.0)
    due = sorted(judged.remind_at - t0 for judged in reminders)
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
    return [Bucket(start=round(start, 3), end=round(stop, 3), owed=bisect.bisect_left(due, stop)
                   - bisect.bisect_left(due, start), label=label)
            for start, stop, label in edges]
