"""The live display: what a run is doing now, read from its growing journal, as panel or lines.

On a terminal a `rich.live.Live` panel is refreshed twice a second; elsewhere (a CI log, a file)
one plain line is printed every 10 s of load, without escape codes. The figures are a cheap
running estimate ("so far"); the scorecard at the end is the verdict.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from harness.journal import (
    EVENT,
    BorrowerChanged,
    BorrowerOptedOut,
    Event,
    FaultApplied,
    FaultReverted,
    LoadFinished,
    LoadStarted,
    ReminderChanged,
    ReminderScheduled,
    RunEnded,
    RunStarted,
    SendRecorded,
)
from harness.run import FAULT_INJECTION_FAILED
from harness.scenario import Scenario
from harness.tail import JournalTail, kind_of
from mocks.manifest import Channel

RUN_FOLDER = "run folder: "
"""How `rehearse` names the run folder in its first progress message."""


@dataclass(frozen=True)
class ActiveStep:
    """A timeline step in force now."""

    step: int
    fault: str
    link: str
    since: float


@dataclass(frozen=True)
class Snapshot:
    """The run as the journal tells it so far.

    `due`: owed reminders that are settled (their deadline passed, or they arrived);
    `on_time`: of those, arrived at the borrower's phone of the time by their deadline;
    `in_flight`: owed, their send time passed, neither arrived nor late yet.
    """

    name: str
    elapsed: float | None
    total: float | None
    active: tuple[ActiveStep, ...]
    due: int
    on_time: int
    in_flight: int
    requests: int
    failures: int | None
    ended: str | None

    @property
    def continuity(self) -> float | None:
        """On time / due so far; None while nothing is due."""
        return self.on_time / self.due if self.due else None


def _kind(model: type[Event]) -> str:
    return str(model.model_fields["kind"].default)


class ScheduledLine(BaseModel):
    """The fields of a `reminder.scheduled` line the estimate reads: validating these alone
    costs a third of the whole event (measured on a 1000/s run's journal: 3.8 against 10 µs a
    line), and the estimate keeps one per reminder."""

    model_config = ConfigDict(frozen=True)  # the rest of the line is ignored

    t: float
    reminder_id: str
    ref: str
    borrower_id: str
    phone: str
    email: str = ""
    device_token: str = ""
    opted_out: bool = False
    remind_at: float
    send_by: float


class SentLine(BaseModel):
    """The fields of a `send.recorded` line the estimate reads (not the raw request, most of
    the line: 3.8 against 13.7 µs a line)."""

    model_config = ConfigDict(frozen=True)

    t: float
    channel: Channel = "sms"
    to: str
    body: str
    client_ref: str | None = None
    handset: str = "delivered"
    inbox_at: float | None


Scheduled = ReminderScheduled | ScheduledLine
Sent = SendRecorded | SentLine
_LEAN: dict[str, type[ScheduledLine] | type[SentLine]] = {
    "reminder.scheduled": ScheduledLine, "send.recorded": SentLine}


@dataclass(frozen=True)
class _Arrival:
    t: float
    channel: Channel
    to: str
    inbox_at: float


class RunProgress:
    """Folds journal events, in any order across files, into a Snapshot on demand.

    A snapshot looks only at the reminders still open: one delivered on time, or due with
    every deadline passed, is counted once and for good, so that a refresh costs what is in
    flight, not everything the run has scheduled so far.
    """

    KINDS = frozenset(_kind(model) for model in (
        RunStarted, LoadStarted, FaultApplied, FaultReverted, ReminderScheduled,
        ReminderChanged, BorrowerChanged, BorrowerOptedOut, SendRecorded, LoadFinished,
        RunEnded))
    """The kinds of event it takes in (the rest, such as each vendor call, it never reads)."""

    def __init__(self) -> None:
        self._scenario: Scenario | None = None
        self._load_started: float | None = None
        self._active: dict[int, ActiveStep] = {}
        self._reminders: dict[str, Scheduled] = {}
        self._open: dict[str, Scheduled] = {}
        self._closed_on_time = 0
        self._closed_due = 0
        self._repaid: set[str] = set()
        self._phones: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self._opted_out: set[str] = set()
        self._opted_out_phones: set[str] = set()
        self._arrivals: dict[str, list[_Arrival]] = defaultdict(list)
        self._failures: int | None = None
        self._ended: str | None = None

    def add(self, events: Sequence[Event | ScheduledLine | SentLine]) -> None:
        """Take in newly read events."""
        for event in events:
            self._add(event)

    def add_lines(self, lines: list[bytes]) -> None:
        """Take in newly read journal lines: a reminder's and a send's into their lean models,
        the other kinds in KINDS into whole events, the rest passed over unparsed."""
        events: list[Event | ScheduledLine | SentLine] = []
        for line in lines:
            kind = kind_of(line)
            if kind is not None and kind not in self.KINDS:
                continue
            lean = _LEAN.get(kind) if kind is not None else None
            try:
                events.append(EVENT.validate_json(line) if lean is None
                              else lean.model_validate_json(line))
            except ValidationError:
                continue  # the display estimates; the scorer reports a bad journal
        self.add(events)

    def _add(self, event: Event | ScheduledLine | SentLine) -> None:
        # The two kinds of nearly every line first: each test of a union type costs.
        if isinstance(event, Scheduled):
            if event.reminder_id not in self._reminders:
                self._open[event.reminder_id] = event
            self._reminders[event.reminder_id] = event
            bisect.insort(self._phones[event.borrower_id], (event.t, event.phone))
            if event.opted_out:
                self._opted_out.add(event.borrower_id)
        elif isinstance(event, Sent):
            if event.handset == "delivered" and event.inbox_at is not None:
                arrival = _Arrival(event.t, event.channel, event.to, event.inbox_at)
                for ref in self._refs(event):
                    self._arrivals[ref].append(arrival)
        elif isinstance(event, RunStarted):
            self._scenario = event.scenario
        elif isinstance(event, LoadStarted):
            self._load_started = event.t
        elif isinstance(event, FaultApplied):
            self._active[event.step] = ActiveStep(event.step, event.fault, event.link, event.t)
        elif isinstance(event, FaultReverted):
            self._active.pop(event.step, None)
        elif isinstance(event, ReminderChanged) and event.change == "repaid":
            self._repaid.add(event.reminder_id)
        elif isinstance(event, BorrowerChanged):
            bisect.insort(self._phones[event.borrower_id], (event.t, event.phone))
            (self._opted_out.add if event.opted_out else self._opted_out.discard)(
                event.borrower_id)
        elif isinstance(event, BorrowerOptedOut):
            self._opted_out_phones.add(event.phone)
        elif isinstance(event, LoadFinished):
            self._failures = event.failures
        elif isinstance(event, RunEnded):
            self._ended = event.status

    def _refs(self, send: Sent) -> set[str]:
        """The references a send may carry, as the scenario correlates them."""
        rule = self._scenario.reminders.correlate if self._scenario else None
        refs: set[str] = set()
        if rule is None:
            return refs
        if rule.client_ref and send.client_ref:
            refs.add(send.client_ref)
        match = re.search(rule.body, send.body) if rule.body else None
        if match is not None:
            refs.add(match.group("ref"))
        return refs

    def _phone_at(self, borrower: str, at: float) -> str:
        history = self._phones[borrower]  # kept sorted by time
        index = bisect.bisect_right(history, at, key=lambda entry: entry[0])
        return history[max(index - 1, 0)][1]

    def _reaches(self, reminder: Scheduled, arrival: _Arrival) -> bool:
        """Whether `arrival` went to the reminder's borrower on its channel."""
        if arrival.channel == "email":
            return arrival.to.lower() == reminder.email.lower()
        if arrival.channel == "push":
            return arrival.to == reminder.device_token
        return arrival.to == self._phone_at(reminder.borrower_id, arrival.t)

    def _deadline(self, reminder: Scheduled, channel: Channel) -> float:
        if channel == "sms" or self._scenario is None:
            return reminder.send_by
        return reminder.remind_at + self._scenario.window_of(channel)

    def _owed(self, reminder: Scheduled, now: float) -> bool:
        # Cheaper than the scorer's rules (an opt-out counts from the start, whenever it came).
        return not (reminder.reminder_id in self._repaid
                    or reminder.borrower_id in self._opted_out
                    or self._phone_at(reminder.borrower_id, now) in self._opted_out_phones)

    def elapsed(self, now: float) -> float | None:
        """Seconds of load at `now`; None before the load began."""
        return None if self._load_started is None else max(now - self._load_started, 0.0)

    @property
    def ended(self) -> str | None:
        """How the run ended, once its journal says it has."""
        return self._ended

    def snapshot(self, now: float) -> Snapshot:
        """The figures as of `now` (a time.time() value)."""
        due, in_flight = 0, 0
        allowed = self._scenario.allowed if self._scenario else ("sms",)
        for reminder in list(self._open.values()):
            if reminder.remind_at > now or not self._owed(reminder, now):
                continue
            arrived = [a for a in self._arrivals.get(reminder.ref, [])
                       if self._reaches(reminder, a)]
            closed = max(self._deadline(reminder, channel) for channel in allowed) <= now
            if any(a.inbox_at <= self._deadline(reminder, a.channel) for a in arrived):
                del self._open[reminder.reminder_id]
                self._closed_on_time += 1
            elif closed:
                del self._open[reminder.reminder_id]
                self._closed_due += 1
            elif arrived:
                due += 1
            else:
                in_flight += 1
        on_time = self._closed_on_time
        due += self._closed_on_time + self._closed_due
        scenario = self._scenario
        return Snapshot(
            name=scenario.name if scenario else "",
            elapsed=self.elapsed(now),
            total=scenario.duration + scenario.drain_seconds if scenario else None,
            active=tuple(self._active[step] for step in sorted(self._active)),
            due=due, on_time=on_time, in_flight=in_flight, requests=len(self._reminders),
            failures=self._failures, ended=self._ended)


def plain_line(snapshot: Snapshot) -> str:
    """One line for a log: `[ 30s/115s] due 120 on time 118 (98.3%) ... faults: ...`."""
    total = f"{snapshot.total:.0f}s" if snapshot.total is not None else "?"
    parts = [f"[{snapshot.elapsed or 0:>3.0f}s/{total}]", f"due {snapshot.due}",
             f"on time {snapshot.on_time}"]
    if snapshot.continuity is not None:
        parts.append(f"({snapshot.continuity:.1%})")
    parts += [f"in flight {snapshot.in_flight}", f"requests {snapshot.requests}"]
    if snapshot.failures is not None:
        parts.append(f"failures {snapshot.failures}")
    faults = ", ".join(f"step {a.step} {a.fault} {a.link}" for a in snapshot.active)
    parts.append(f"faults: {faults or 'none'}")
    return " ".join(parts)


def panel(snapshot: Snapshot, latest: str, errors: list[str]) -> RenderableType:
    """The terminal panel: time, faults in force, reminders and continuity so far, load, the
    latest progress message and every fault-injection error."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    if snapshot.elapsed is None:
        grid.add_row("elapsed", "starting (load not begun)")
    else:
        total = f" / {snapshot.total:.0f}s (load + drain)" if snapshot.total else ""
        grid.add_row("elapsed", f"{snapshot.elapsed:.0f}s{total}")
    faults = Text()
    for active in snapshot.active:
        since = f" for {max(time.time() - active.since, 0):.0f}s"
        faults.append(f"step {active.step} {active.fault} on {active.link}{since}\n",
                      style="yellow")
    grid.add_row("faults now", faults[:-1] if snapshot.active else Text("none", style="dim"))
    grid.add_row("reminders", f"due so far {snapshot.due} · on time so far {snapshot.on_time}"
                              f" · in flight {snapshot.in_flight}")
    continuity = snapshot.continuity
    grid.add_row("continuity", Text("—" if continuity is None else f"{continuity:.1%} so far",
                                    style="green" if continuity in (None, 1.0) else "red"))
    failures = "failures known when the load ends" if snapshot.failures is None \
        else f"failures {snapshot.failures}"
    grid.add_row("load", f"requests {snapshot.requests} · {failures}")
    grid.add_row("latest", Text(latest, style="dim"))
    parts: list[RenderableType] = [grid]
    parts += [Text(error, style="bold red") for error in errors]
    title = f"notifychaos · {snapshot.name}" if snapshot.name else "notifychaos"
    return Panel(Group(*parts), title=title, title_align="left", expand=False)


class LiveDisplay:
    """Shows a run while it goes; use as a context manager and pass `say` as `progress`.

    Progress messages print as they come (on a terminal, above the panel, whose last line
    repeats the latest one); fault-injection errors also stay in the panel.

    The journal is read in a background thread that never blocks the run; leaving the block
    (normally, on an error or on Ctrl-C) stops it before anything else is printed.
    """

    def __init__(self, console: Console, *, interval: float = 10.0, poll: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self._console = console
        self._interval = interval
        self._poll = poll
        self._clock = clock
        self._lock = threading.Lock()
        self._tail: JournalTail | None = None
        self._progress = RunProgress()
        self._latest = ""
        self._errors: list[str] = []
        self._next_line = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="live-display", daemon=True)
        self._live = Live(console=console, auto_refresh=False, redirect_stdout=False,
                          redirect_stderr=False) if console.is_terminal else None

    def say(self, message: str) -> None:
        """A progress message: printed, and the first one (naming the run folder) starts the
        journal reading; fault-injection errors are shown apart."""
        error = message.startswith(FAULT_INJECTION_FAILED)
        with self._lock:
            if self._tail is None and message.startswith(RUN_FOLDER):
                self._tail = JournalTail(Path(message.removeprefix(RUN_FOLDER)) / "journal")
            self._latest = message
            if error:
                self._errors.append(message)
        self._console.print(f"{'!' if error else '·'} {message}", markup=False, highlight=False,
                            style="bold red" if error else "dim", soft_wrap=True)

    def __enter__(self) -> LiveDisplay:
        if self._live is not None:
            self._live.start()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        if self._live is not None:
            self._update()  # the last figures stay on screen above the summary
            self._live.stop()

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            self._update()

    def _update(self) -> None:
        with self._lock:
            tail = self._tail
        if tail is None:
            return
        try:
            lines = tail.lines()
        except OSError:
            return  # the folder is being made or removed; the next poll reads on
        progress, now = self._progress, self._clock()
        progress.add_lines(lines)
        if self._live is not None:
            snapshot = progress.snapshot(now)
            with self._lock:
                view = panel(snapshot, self._latest, list(self._errors))
            self._live.update(view, refresh=True)
            return
        # Off a terminal the figures are made only for the line that shows them: a snapshot
        # costs the reminders still open, which a notifier that falls behind makes many.
        elapsed = progress.elapsed(now)
        if elapsed is not None and elapsed >= self._next_line and progress.ended is None:
            self._next_line = (elapsed // self._interval + 1) * self._interval
            self._console.print(plain_line(progress.snapshot(now)), markup=False,
                                highlight=False, soft_wrap=True)  # one line, however long
