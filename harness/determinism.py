"""Same seed, same fates: run a scenario twice and compare what became of every reminder.

A reminder's fate is its outcome (or why it was not owed) and what the mocks did to it: each
copy's vendor and handset, the fault switches that touched that copy, the ledger's distortions
of its record, and the borrower's STOP reply. The mocks draw every fate from the seed and what
it is about (`mocks.draws`), so two runs give each reminder the same fate; what timing alone
decides is told apart, not counted as a difference:

- a reminder scheduled in one run only (the load generator ticked once more or less);
- a reminder sent within `MARGIN` of a fault step's start or end in either run, or whose record
  was replicated (scheduled, changed) that near a data fault's: whether the fault was in force
  for it is a race, not a draw.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.continuity import judge_run
from harness.journal import (
    BorrowerOptedOut,
    FaultApplied,
    FaultReverted,
    FaultTouched,
    Journal,
    MockFaultsChanged,
    RunStarted,
    SendRecorded,
    read_journal,
)
from harness.rehearsal import RunResult, rehearse
from harness.scenario import Overrides, Scenario

MARGIN = 1.0
"""Seconds either side of a fault step's start or end within which timing decides a fate."""

Live = Callable[[], AbstractContextManager[Callable[[str], None]]]


@dataclass(frozen=True)
class Fate:
    """What became of one reminder in one run, and the times that fate was decided at."""

    reminder_id: str
    outcome: str
    """An outcome (`on_time`, `missed`, ...) or `cancelled`, `not owed`, `unsettled`."""
    copies: tuple[str, ...]
    """Each copy in order of acceptance: `twilio delivered`, `twilio dropped (drop)`, ..."""
    touches: tuple[str, ...]
    """The ledger's distortions of its record (`ledger drift`) and `STOP` if its borrower
    replied STOP to it."""
    sent: tuple[float, ...]
    """When each copy was accepted (journal times)."""
    recorded: tuple[float, ...]
    """When its record was scheduled and distorted (journal times)."""

    def describe(self) -> str:
        """The fate in words: `missed: twilio dropped (drop); ledger drift`."""
        told = "; ".join((*self.copies, *self.touches)) or "nothing sent"
        return f"{self.outcome}: {told}"

    def same(self, other: Fate) -> bool:
        """Whether `other` is the same fate (the times apart)."""
        return (self.outcome, self.copies, self.touches) == (other.outcome, other.copies,
                                                             other.touches)



def fates(journal: Journal) -> dict[str, Fate]:
    """Every scheduled reminder's fate, by reminder id, in the order they were scheduled."""
    if journal.first(RunStarted) is None:
        return {}
    judgement = judge_run(journal)
    by_subject: dict[str, list[FaultTouched]] = defaultdict(list)
    for touch in journal.of(FaultTouched):
        if touch.subject:
            by_subject[touch.subject].append(touch)
    stops = journal.of(BorrowerOptedOut)
    found: dict[str, Fate] = {}
    for judged in judgement.reminders:
        sends = [copy.send for copy in judged.copies]
        copies = tuple(_copy(send, by_subject[send.message_id]) for send in sends)
        ledger = [t for t in by_subject[judged.reminder_id] if t.mock == "ledger"]
        stopped = any(stop.phone == send.to and send.inbox_at is not None
                      and send.inbox_at <= stop.t for stop in stops for send in sends)
        touches = (*sorted({f"ledger {t.switch}" for t in ledger}),
                   *(("STOP",) if stopped else ()))
        found[judged.reminder_id] = Fate(
            judged.reminder_id, judged.state, copies, touches,
            sent=tuple(send.t for send in sends),
            recorded=(judged.scheduled_t, *(t.t for t in ledger)))
    return found


def _copy(send: SendRecorded, touched: Sequence[FaultTouched]) -> str:
    switches = sorted({t.switch for t in touched if t.mock == send.vendor})
    return f"{send.vendor} {send.handset}" + (f" ({', '.join(switches)})" if switches else "")


@dataclass(frozen=True)
class Edges:
    """When fault steps started or ended, as the harness and the mocks saw it: data faults
    (the ledger's replica) apart from the others, which act on sends."""

    sends: tuple[float, ...] = ()
    records: tuple[float, ...] = ()


def boundaries(journal: Journal) -> Edges:
    """The fault edges of a run."""
    sends: list[float] = []
    records: list[float] = []
    for event in journal.events:
        if isinstance(event, FaultApplied | FaultReverted):
            (records if event.fault.startswith("data.") else sends).append(event.t)
        elif isinstance(event, MockFaultsChanged):
            (records if event.mock == "ledger" else sends).append(event.t)
    return Edges(tuple(sends), tuple(records))


@dataclass(frozen=True)
class Difference:
    """A reminder whose fate differs between the runs."""

    reminder_id: str
    first: Fate
    second: Fate

    def describe(self) -> str:
        return (f"{self.reminder_id}: run 1 {self.first.describe()}; "
                f"run 2 {self.second.describe()}")


@dataclass(frozen=True)
class Comparison:
    """Two runs' fates compared, reminder by reminder (in the first run's order)."""

    compared: int
    """Reminders scheduled in both runs whose fates timing cannot decide."""
    differences: tuple[Difference, ...]
    """Of those, the ones whose fates differ: each a failure of the seed to fix a fate."""
    timing: tuple[Difference, ...]
    """Reminders near a fault's start or end whose fates differ (timing decided them)."""
    near_boundary: int
    """Reminders near a fault's start or end in either run (not compared)."""
    one_run_only: tuple[str, ...]
    """Reminders scheduled in one of the runs only (the load's tick count differed)."""

    @property
    def same(self) -> bool:
        """Whether every compared reminder had the same fate in both runs."""
        return not self.differences

    def describe(self) -> list[str]:
        """The comparison in lines: the verdict first, then what was left out and why."""
        if self.same:
            lines = [f"deterministic: {self.compared} reminders, same fates"]
        else:
            lines = [f"NOT deterministic: {len(self.differences)} of {self.compared} reminders "
                     f"differ; the first: {self.differences[0].describe()}"]
        if self.near_boundary:
            lines.append(f"{self.near_boundary} reminders within {MARGIN:g}s of a fault's start "
                         f"or end not compared (timing decides whether the fault caught them); "
                         f"{len(self.timing)} of them differ")
        if self.one_run_only:
            lines.append(f"{len(self.one_run_only)} reminders scheduled in one run only (the "
                         f"load ticked a different number of times): "
                         f"{', '.join(self.one_run_only[:5])}")
        return lines


def compare(first: Mapping[str, Fate], second: Mapping[str, Fate],
            first_edges: Edges = Edges(), second_edges: Edges = Edges()) -> Comparison:
    """Compare two runs' fates; `*_edges` are each run's fault boundaries (`boundaries`)."""
    differences: list[Difference] = []
    timing: list[Difference] = []
    compared = near = 0
    for rid, one in first.items():
        two = second.get(rid)
        if two is None:
            continue
        if _near(one, first_edges) or _near(two, second_edges):
            near += 1
            if not one.same(two):
                timing.append(Difference(rid, one, two))
            continue
        compared += 1
        if not one.same(two):
            differences.append(Difference(rid, one, two))
    only = tuple(rid for rid in first if rid not in second) + tuple(
        rid for rid in second if rid not in first)
    return Comparison(compared, tuple(differences), tuple(timing), near, only)


def _near(fate: Fate, edges: Edges) -> bool:
    return any(abs(t - edge) < MARGIN for times, near in ((fate.sent, edges.sends),
                                                          (fate.recorded, edges.records))
               for t in times for edge in near)


def compare_runs(first: Path, second: Path) -> Comparison:
    """Compare the fates of two run folders (each with `journal/`)."""
    one, two = read_journal(first / "journal"), read_journal(second / "journal")
    return compare(fates(one), fates(two), boundaries(one), boundaries(two))


@dataclass(frozen=True)
class DeterminismCheck:
    """Two runs of one scenario with the same seed, and their fates compared."""

    runs: tuple[RunResult, RunResult]
    comparison: Comparison


@contextmanager
def _quiet() -> Iterator[Callable[[str], None]]:
    yield lambda message: None


def check_determinism(scenario: Scenario | Path | str, *, out: Path | str = Path("reports"),
                      overrides: Overrides = (), toxiproxy_url: str | None = None,
                      toxiproxy_binary: str | None = None, live: Live | None = None
                      ) -> DeterminismCheck:
    """Rehearse `scenario` twice, one run after the other, and compare every reminder's fate.
    Each run is made inside a fresh `live()` context whose value hears its progress. Raises
    what `rehearse` raises (a run that could not be carried out, Ctrl-C)."""
    results = []
    for _ in range(2):
        with (live or _quiet)() as progress:
            results.append(rehearse(scenario, out=out, overrides=overrides,
                                    toxiproxy_url=toxiproxy_url,
                                    toxiproxy_binary=toxiproxy_binary, progress=progress))
    first, second = results
    return DeterminismCheck((first, second), compare_runs(first.run_dir, second.run_dir))
