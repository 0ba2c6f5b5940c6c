"""The judged reminders folded, a batch at a time, into the compact state the scorecard's
figures are computed from (`harness.continuity.card`).

Both scorers feed it: the pure one every `Judged` reminder, the engine its partitions' rows
and the fast lane's reminders (added up in SQL, `Counted`, with its witness candidates one by
one), in any order and batching. Per owed settled reminder it keeps only the few times the
timing figures sort (`harness.timing`: due, waited until, delivered on time, expired, latency;
8 bytes each); everything else is counters (outcomes, channels, each fault
step's exposure and the maintenance windows', by the rules of `harness.fault_rows` and
`harness.channel_figures`) and, for the gates' witnesses (`harness.verdict`), the first
`MAX_WITNESSES` reminders of each kind a gate names, in the order the reminders were first
scheduled: so the same reminders, however they come, give the same figures.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.channel_figures import count, no_mix
from harness.fault_rows import MAINTENANCE_DELIVERED, Exposed, Exposure
from harness.judging import Judged
from harness.scorecard import OUTCOMES, Outcome
from harness.timing import deliverable
from harness.verdict import MAX_WITNESSES
from mocks.manifest import Channel


class Row(Judged):
    """An owed settled reminder (or a witness of duplicates) as the figures read it: a
    `Judged` without its truth and copies, in about 200 bytes."""

    # Slots named as `Judged`'s properties take their place: a figure reads a value, not a
    # computation over the truth.
    __slots__ = ("cancelled", "channel", "closes", "delivered_at", "extra_copies", "order",
                 "outcome", "owed", "remind_at", "reminder_id", "scheduled_t", "send_by",
                 "settled")
    order: int
    """Its place in the order reminders were first scheduled (`Truth.reminders`)."""

    def __init__(self, outcome: Outcome, owed: bool, cancelled: bool, settled: bool,
                 reminder_id: str, remind_at: float, send_by: float, closes: float,
                 delivered_at: float | None, channel: Channel | None, extra_copies: int,
                 scheduled_t: float, order: int) -> None:
        # Judged is frozen: its fields are set as its own __init__ sets them, one by one (a
        # loop over the names took 8 µs a row, a tenth of the engine's time at 10^6).
        put = object.__setattr__
        put(self, "outcome", outcome)
        put(self, "owed", owed)
        put(self, "cancelled", cancelled)
        put(self, "settled", settled)
        put(self, "reminder_id", reminder_id)
        put(self, "remind_at", remind_at)
        put(self, "send_by", send_by)
        put(self, "closes", closes)
        put(self, "delivered_at", delivered_at)
        put(self, "channel", channel)
        put(self, "extra_copies", extra_copies)
        put(self, "scheduled_t", scheduled_t)
        put(self, "order", order)

    @classmethod
    def of(cls, judged: Judged, order: int) -> Row:
        """The row of `judged`, `order`-th reminder first scheduled."""
        return cls(judged.outcome, judged.owed, judged.cancelled, judged.settled,
                   judged.reminder_id, judged.remind_at, judged.send_by, judged.closes,
                   judged.delivered_at, judged.channel, judged.extra_copies,
                   judged.scheduled_t, order)

    def __reduce__(self) -> tuple[type[Row], tuple[Any, ...]]:
        # Rows cross from the worker processes; the frozen parent refuses setattr.
        return Row, (self.outcome, self.owed, self.cancelled, self.settled, self.reminder_id,
                     self.remind_at, self.send_by, self.closes, self.delivered_at,
                     self.channel, self.extra_copies, self.scheduled_t, self.order)


@dataclass(frozen=True)
class Folded:
    """The owed settled reminders as the scorecard's figures read them (times in order)."""

    owed: int
    outcomes: dict[Outcome, int]
    mix: dict[str, int]
    """By which channel the reminders delivered correctly were delivered."""
    outside: dict[str, int]
    """The same, of the reminders exposed to no fault step."""
    exposed: tuple[Exposed, ...]
    """One per fault step, as `harness.fault_rows.exposures` gave them."""
    maintained: int
    """Reminders exposed to any maintenance window, each once."""
    maintained_delivered: int
    remind_at: Sequence[float]
    due: Sequence[float]
    """Of the deliverable ones: `remind_at`."""
    waited: Sequence[float]
    """Of the deliverable ones: `waited_until`."""
    on_time: Sequence[float]
    """Of the on-time ones: when they reached the inbox."""
    expired: Sequence[float]
    """Of the other deliverable ones: `closes`."""
    latencies: Sequence[float]
    witnesses: tuple[Judged, ...]
    """Every reminder (settled or not) a gate may name as a witness, in order."""


@dataclass(frozen=True)
class Counted:
    """Owed settled reminders added up elsewhere (the engine's fast lane, in SQL), as
    `Fold.settled` would count them one by one."""

    outcomes: dict[tuple[Outcome, Channel | None], int]
    """How many of each outcome, by the channel that delivered them correctly (None: none
    did)."""
    times: dict[str, array[float]]
    """The fold's times (`Fold.times`' names), each in any order."""


class _Least:
    """The `MAX_WITNESSES` reminders of least key offered (keys are distinct: each has the
    reminder's order in it)."""

    def __init__(self) -> None:
        # A min-heap of the negated keys: its top is the greatest key kept.
        self._heap: list[tuple[Any, int, Judged]] = []

    def offer(self, negated: Any, order: int, make: Callable[[], Judged]) -> None:
        """Keep the `order`-th reminder, which `make` gives, if its key (`negated`, negated)
        is among the least; `make` is called only then."""
        heap = self._heap
        if len(heap) < MAX_WITNESSES:
            heapq.heappush(heap, (negated, order, make()))
        elif negated > heap[0][0]:
            heapq.heapreplace(heap, (negated, order, make()))

    def kept(self) -> list[tuple[int, Judged]]:
        """The reminders kept, each with its order."""
        return [(order, judged) for _, order, judged in self._heap]


class _Step:
    """What became of the reminders one fault step exposed, so far."""

    def __init__(self, allowed: Sequence[Channel]) -> None:
        self.count = 0
        self.outcomes: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        self.duplicates = 0
        self.channels = no_mix(allowed)

    def done(self) -> Exposed:
        return Exposed(count=self.count, outcomes=dict(self.outcomes),
                       duplicates=self.duplicates, channels=dict(self.channels))


TIMES = ("remind_at", "due", "waited", "on_time", "expired", "latencies")
"""The times the fold keeps (`Counted.times` gives them by these names)."""


class Fold:
    """Judged reminders added up as the figures need them (`done` gives the figures' input).
    `exposures` and `maintenance` are the fault steps' exposures and the maintenance windows'
    (`harness.fault_rows.exposures`, `maintenance`)."""

    def __init__(self, exposures: Sequence[Exposure], maintenance: Sequence[Exposure],
                 allowed: Sequence[Channel]) -> None:
        self._exposures = tuple(exposures)
        self._maintenance = tuple(maintenance)
        self._owed = 0
        self._outcomes: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        self._mix = no_mix(allowed)
        self._outside = no_mix(allowed)
        self._steps = [_Step(allowed) for _ in self._exposures]
        self._maintained = 0
        self._maintained_delivered = 0
        self._times = {name: array("d") for name in TIMES}
        # The witnesses: per outcome, not on time, with copies too many (settled or not), and
        # the slowest (`harness.verdict._witnesses`).
        self._first = {name: _Least() for name in (*OUTCOMES, "not_on_time", "duplicates")}
        self._slowest = _Least()

    def add(self, judged: Judged, order: int) -> None:
        """Add `judged`, the `order`-th reminder first scheduled."""
        if judged.settled:
            self.settled(judged.outcome, judged.reminder_id, judged.remind_at, judged.closes,
                         judged.delivered_at, judged.channel, judged.extra_copies,
                         judged.scheduled_t, order, lambda: judged)
        elif judged.extra_copies:
            self._first["duplicates"].offer(-order, order, lambda: judged)

    def add_row(self, outcome: Outcome, owed: bool, cancelled: bool, settled: bool,
                reminder_id: str, remind_at: float, send_by: float, closes: float,
                delivered_at: float | None, channel: Channel | None, extra_copies: int,
                scheduled_t: float, order: int) -> None:
        """Add the reminder `Row` would make of these values, without making it unless it is
        a witness (the engine's fast lane: a million rows spared)."""
        def make() -> Judged:
            return Row(outcome, owed, cancelled, settled, reminder_id, remind_at, send_by,
                       closes, delivered_at, channel, extra_copies, scheduled_t, order)

        if settled:
            self.settled(outcome, reminder_id, remind_at, closes, delivered_at, channel,
                         extra_copies, scheduled_t, order, make)
        elif extra_copies:
            self._first["duplicates"].offer(-order, order, make)

    def settled(self, outcome: Outcome, reminder_id: str, remind_at: float, closes: float,
                delivered_at: float | None, channel: Channel | None, extra_copies: int,
                scheduled_t: float, order: int, make: Callable[[], Judged]) -> None:
        """Add an owed settled reminder by its values (`make` gives it, if a witness)."""
        self._owed += 1
        self._outcomes[outcome] += 1
        count(self._mix, channel)
        waited = closes if delivered_at is None else delivered_at
        times = self._times
        times["remind_at"].append(remind_at)
        if deliverable(outcome):
            times["due"].append(remind_at)
            times["waited"].append(waited)
            if outcome == "on_time" and delivered_at is not None:
                times["on_time"].append(delivered_at)
            else:
                times["expired"].append(closes)
        if delivered_at is not None:
            times["latencies"].append(delivered_at - remind_at)
        self.expose(outcome, reminder_id, remind_at, scheduled_t, waited, channel,
                    extra_copies)
        self._offer(outcome, remind_at, delivered_at, extra_copies, order, make)

    @property
    def exposing(self) -> bool:
        """Whether any fault step or maintenance window may expose a reminder: then each
        reminder added by `add_counted` must also be given to `expose`."""
        return bool(self._exposures or self._maintenance)

    def expose(self, outcome: Outcome, reminder_id: str, remind_at: float, scheduled_t: float,
               waited: float, channel: Channel | None, extra_copies: int) -> None:
        """Count an owed settled reminder by the fault steps and maintenance windows that
        exposed it (`waited` is until when: delivered, else when its window closed)."""
        exposed = False
        for exposure, step in zip(self._exposures, self._steps, strict=True):
            if exposure.exposes(reminder_id, remind_at, scheduled_t, waited):
                exposed = True
                step.count += 1
                step.outcomes[outcome] += 1
                step.duplicates += extra_copies
                count(step.channels, channel)
        if not exposed:
            count(self._outside, channel)
        if any(window.exposes(reminder_id, remind_at, scheduled_t, waited)
               for window in self._maintenance):
            self._maintained += 1
            self._maintained_delivered += outcome in MAINTENANCE_DELIVERED

    def add_counted(self, counted: Counted) -> None:
        """Add owed settled reminders counted elsewhere; with `exposing`, each of them must
        be given to `expose` too, and their witness candidates to `add_witness` in any
        case."""
        for (outcome, channel), reminders in counted.outcomes.items():
            self._owed += reminders
            self._outcomes[outcome] += reminders
            if channel is not None:
                self._mix[channel] += reminders
                if not self.exposing:
                    self._outside[channel] += reminders
        for name, values in counted.times.items():
            self._times[name].extend(values)

    def add_witness(self, outcome: Outcome, owed: bool, cancelled: bool, settled: bool,
                    reminder_id: str, remind_at: float, send_by: float, closes: float,
                    delivered_at: float | None, channel: Channel | None, extra_copies: int,
                    scheduled_t: float, order: int) -> None:
        """Offer as a witness, counting nothing, the reminder `Row` would make of these
        values (one of those `add_counted` counts, or an unsettled one)."""
        def make() -> Judged:
            return Row(outcome, owed, cancelled, settled, reminder_id, remind_at, send_by,
                       closes, delivered_at, channel, extra_copies, scheduled_t, order)

        if settled:
            self._offer(outcome, remind_at, delivered_at, extra_copies, order, make)
        elif extra_copies:
            self._first["duplicates"].offer(-order, order, make)

    def _offer(self, outcome: Outcome, remind_at: float, delivered_at: float | None,
               extra_copies: int, order: int, make: Callable[[], Judged]) -> None:
        """Offer an owed settled reminder to the witnesses a gate may name."""
        first = self._first
        first[outcome].offer(-order, order, make)
        if outcome != "on_time":
            first["not_on_time"].offer(-order, order, make)
        if extra_copies:
            first["duplicates"].offer(-order, order, make)
        if delivered_at is not None:
            # The slowest first, the first scheduled among equals.
            self._slowest.offer((delivered_at - remind_at, -order), order, make)

    def done(self) -> Folded:
        """The figures' input from every reminder added."""
        ordered = {name: array("d", sorted(values)) for name, values in self._times.items()}
        kept = dict(found for least in (*self._first.values(), self._slowest)
                    for found in least.kept())
        return Folded(
            owed=self._owed, outcomes=dict(self._outcomes), mix=dict(self._mix),
            outside=dict(self._outside), exposed=tuple(step.done() for step in self._steps),
            maintained=self._maintained, maintained_delivered=self._maintained_delivered,
            remind_at=ordered["remind_at"], due=ordered["due"], waited=ordered["waited"],
            on_time=ordered["on_time"], expired=ordered["expired"],
            latencies=ordered["latencies"],
            witnesses=tuple(kept[order] for order in sorted(kept)))
