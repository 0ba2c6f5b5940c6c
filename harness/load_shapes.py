"""Reminder rates over a run's time (steady, a morning batch, a month-end peak, a spike) as
piecewise-constant curves, and the exact time of each tick they schedule.

Pure and stdlib-only: Locust's process imports it (harness.locustfile), and the harness builds
the curves from the scenario (harness.scenario.Reminders.curve) and hands them over as JSON.

A curve is a base rate plus extra windows (a burst, a spike, the month's last days) over
`[0, duration)`. The k-th tick (from 0) is sent when the curve's count reaches k + 1/2: at a
steady 4/s that is 0.125 s, 0.375 s, ...; so a run schedules exactly `ticks` reminders,
round(the curve's integral), whatever the users' timing, and each at a time fixed in advance.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

DAY = 86_400.0
"""Calendar seconds in a day."""


@dataclass(frozen=True)
class Segment:
    """`rate` reminders a second from `start` until `end` (seconds from the start of load)."""

    start: float
    end: float
    rate: float


@dataclass(frozen=True)
class Curve:
    """A rate over `[0, duration)`: consecutive segments, from 0 to the end."""

    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        if not self.segments:
            raise ValueError("a curve has at least one segment")
        at = 0.0
        for segment in self.segments:
            if segment.start != at or segment.end <= segment.start or segment.rate < 0:
                raise ValueError(f"segments must follow on from 0 with rates >= 0: {segment}")
            at = segment.end

    @property
    def duration(self) -> float:
        return self.segments[-1].end

    @property
    def peak(self) -> float:
        """The highest rate of the curve."""
        return max(segment.rate for segment in self.segments)

    @property
    def ticks(self) -> int:
        """How many ticks the curve schedules in all."""
        return math.floor(self.count(self.duration) + 0.5)

    def rate(self, t: float) -> float:
        """Reminders a second at `t` (0 outside the curve)."""
        index = self._index(t)
        return 0.0 if index is None else self.segments[index].rate

    def count(self, t: float) -> float:
        """The curve's integral from 0 to `t`: reminders scheduled by then, as a real number."""
        total = 0.0
        for segment in self.segments:
            if t <= segment.start:
                break
            total += (min(t, segment.end) - segment.start) * segment.rate
        return total

    def tick_at(self, k: int) -> float | None:
        """When tick `k` (from 0) is sent: where the count reaches k + 1/2; None past the end."""
        wanted = k + 0.5
        total = 0.0
        for segment in self.segments:
            span = (segment.end - segment.start) * segment.rate
            if segment.rate > 0 and total + span >= wanted:
                return segment.start + (wanted - total) / segment.rate
            total += span
        return None

    def _index(self, t: float) -> int | None:
        if t < 0 or t >= self.duration:
            return None
        return bisect.bisect_right([segment.start for segment in self.segments], t) - 1

    def to_json(self) -> str:
        return json.dumps([[s.start, s.end, s.rate] for s in self.segments])

    @classmethod
    def from_json(cls, text: str) -> Curve:
        return cls(tuple(Segment(float(a), float(b), float(r)) for a, b, r in json.loads(text)))


@dataclass(frozen=True)
class Extra:
    """`rate` more reminders a second from `start` until `end`."""

    start: float
    end: float
    rate: float


def curve(base: float, duration: float, extras: Sequence[Extra] = ()) -> Curve:
    """`base` over `[0, duration)` with each extra window added on top (overlaps add up; the
    parts of a window outside the run are left out)."""
    cuts = {0.0, duration}
    for extra in extras:
        cuts |= {min(max(extra.start, 0.0), duration), min(max(extra.end, 0.0), duration)}
    edges = sorted(cuts)
    segments: list[Segment] = []
    for start, end in itertools.pairwise(edges):
        rate = base + sum(extra.rate for extra in extras if extra.start <= start < extra.end)
        if segments and segments[-1].rate == rate:
            segments[-1] = Segment(segments[-1].start, end, rate)
        else:
            segments.append(Segment(start, end, rate))
    return Curve(tuple(segments))


def spike(base: float, duration: float, at: float, lasting: float, factor: float) -> Curve:
    """`base`, and `factor` times it from `at` for `lasting` seconds."""
    return curve(base, duration, [Extra(at, at + lasting, base * (factor - 1))])


def batches(base: float, duration: float, starts: Sequence[float], count: int,
            within: float) -> Curve:
    """`base`, and at each of `starts` a burst of `count` more reminders within `within`
    seconds (the batch a core system releases at once)."""
    return curve(base, duration, [Extra(at, at + within, count / within) for at in starts])


def daily(hour: float, speed: float, duration: float) -> list[float]:
    """The run's times of `hour` (seconds after midnight) on each calendar day of a month
    compressed `speed` times, from the start of load until `duration`."""
    times = []
    day = 0
    while (t := (day * DAY + hour) / speed) < duration:
        times.append(t)
        day += 1
    return times


def month_end(base: float, duration: float, days: int, last_days: float, peak: float) -> Curve:
    """`base` over a month of `days` calendar days mapped onto `duration`, and `peak` over its
    last `last_days` days (when most installments fall due)."""
    return curve(base, duration, [Extra(duration * (days - last_days) / days, duration,
                                        peak - base)])
