"""Which ticks a Locust user asks the ledger for in one request: every tick of its schedule
that has fallen due since its last request, at most `MAX_BATCH`.

Pure and stdlib-only: Locust's process imports it (harness.locustfile). A schedule is a
load_shapes.Curve: the scenario's (a paced run, shared by the users of a Locust process, each
worker process ticking its own part of it) or, in a steady run, each user's own stream of
`rate` ticks a second, the first as it starts (`Stream.steady`), so that any split of the users
between Locust's workers keeps the total rate. A request costs Locust far more CPU than a tick
costs the ledger, so batching them is what lets one Locust process keep thousands of ticks a
second; each tick is still sent at its own time or at most one request interval later, never
ahead.
"""

from __future__ import annotations

import math

from harness.load_shapes import Curve, Segment

MAX_BATCH = 1000
"""The most ticks one request asks for (the ledger refuses more: mocks.ledger checks it)."""

TICK_METHOD = "TICK"
"""The `method` of the locustfile's statistics entry that counts ticks, one per tick that a
request to the ledger carried (the requests are the `POST` entry of the same name)."""

REQUEST_INTERVAL = 0.2
"""Seconds a user waits at least between two of its requests: at a high rate each request
carries every tick due since the last (late by up to this long), at a low one each carries a
single tick, sent at the tick's own time."""


def steady(rate: float) -> Curve:
    """`rate` ticks a second without end, the k-th at (k + 1/2) / rate."""
    return Curve((Segment(0.0, math.inf, rate),))


def due(curve: Curve, now: float, origin: float = 0.0) -> int:
    """How many of the curve's ticks are due at `now` when the curve starts at `origin`: those
    whose `origin + tick_at` is at most `now` (the count's estimate corrected against that very
    sum, so that float rounding never sends a tick ahead of the time `Stream.next_at` gives)."""
    if now < origin:
        return 0
    count = math.floor(curve.count(now - origin) + 0.5)
    while count > 0 and _after(curve, count - 1, now, origin):
        count -= 1
    while not _after(curve, count, now, origin):
        count += 1
    return count


def _after(curve: Curve, k: int, now: float, origin: float) -> bool:
    """Whether tick `k` is due later than `now` (a tick past the curve's end always is)."""
    at = curve.tick_at(k)
    return at is None or origin + at > now


class Stream:
    """The ticks of `curve` from `origin` (Unix time), taken in batches: all of them, or with
    `parts` > 1 the share of part `part` (ticks part, part + parts, ...), so that Locust's
    workers, one part each, tick the curve between them.

    Within one Locust process greenlets switch only at I/O, so `take` is never interleaved: the
    users sharing a stream never take one tick twice.
    """

    def __init__(self, curve: Curve, origin: float, part: int = 0, parts: int = 1) -> None:
        if not 0 <= part < parts:
            raise ValueError(f"part {part} of {parts}: expected 0 <= part < parts")
        self.curve = curve
        self.origin = origin
        self.part, self.parts = part, parts
        self.taken = 0
        """Ticks taken so far (each is one reminder asked of the ledger)."""

    @classmethod
    def steady(cls, rate: float, start: float) -> Stream:
        """`rate` ticks a second from `start`, the first at once and the k-th k / rate later
        (as Locust's constant throughput, which a user's first task does not wait for)."""
        return cls(steady(rate), start - 0.5 / rate)

    def take(self, now: float) -> int:
        """Claim this part's ticks due by `now` not yet taken, at most MAX_BATCH; how many."""
        mine = -(-(due(self.curve, now, self.origin) - self.part) // self.parts)
        count = max(0, min(mine - self.taken, MAX_BATCH))
        self.taken += count
        return count

    def next_at(self) -> float | None:
        """When this part's next tick not yet taken is due (Unix time), None past the curve's
        end."""
        at = self.curve.tick_at(self.part + self.parts * self.taken)
        return None if at is None else self.origin + at
