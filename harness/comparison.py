"""A rehearsal's run beside its baseline's: every figure's difference and verdict against its
margin, and the reminders whose outcome changed.

Rules (`notifychaos compare`, README "Comparing a rehearsal with its baseline"):

- **Comparable** runs have one seed, one population, the same changes to the truth and the same
  reminders' rate, lead and window, so the same bank owes the same reminders in both (the i-th
  reminder of each is the same one, `mocks.bank`); the reminders both scheduled must then be the
  same ones (id, reference, borrower, amount), or they are not comparable after all.
- **A figure** (every one of `FIGURES`, as each run's scorecard has it, but the counts of
  reminders, `owed` and each outcome's, which are over the reminders both runs scheduled, so a
  run that ticked once more does not deliver "more") is judged in its `better` direction
  against its margin: shares and counts by default with margin 0, seconds only when given a
  margin (timing is noisy), and so each outcome's count (continuity and the lost reminders
  judge those already: a margin on continuity is the whole tolerance), figures neither better
  higher nor lower (`better` None) never. A
  figure the rehearsal lost (None where the baseline had a value) is worse, whatever its
  margin; one only the rehearsal has is said, never worse.
- **Reminders** are lined up by id over those both runs scheduled. A reminder's state is its
  outcome when it was owed and settled, else cancelled, not owed or unsettled; a changed
  reminder's state differs. Lost: owed in both, delivered (on time or late) in the baseline,
  not in the rehearsal (by its end: a reminder still in its window when the rehearsal ended
  was not delivered in it either). A run that lasted longer scheduled more: those are counted apart.
- **The verdict** is worse when a judged figure is worse than its margin allows, or when a
  reminder was lost (whatever the margins: a reminder the baseline delivered and the rehearsal
  did not is the regression a rehearsal is for, and one still in its window when the rehearsal
  ended lowers no figure), else not worse; the reasons name the figures and the lost reminders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.baseline import NOISE, Margin, parse_margins, worse_by
from harness.continuity import scored
from harness.errors import JournalError, NotifyChaosError
from harness.journal import Journal, RunStarted, read_journal
from harness.judging import Judgement, count_outcomes
from harness.scenario import Scenario
from harness.scorecard import FIGURES, OUTCOMES, Figure, Scorecard

FigureVerdict = Literal["better", "same", "within margin", "worse", "lost", "gained",
                        "not judged", "shown"]
"""better, same, within margin (worse, by no more than it), worse (by more): a judged figure;
lost: the baseline had a value and the rehearsal none (worse); gained: the other way round;
not judged: seconds without a margin; shown: a figure neither better higher nor lower."""

WORSE: frozenset[FigureVerdict] = frozenset({"worse", "lost"})
DELIVERED = frozenset({"on_time", "late"})
SHOWN_LOST = 10
"""How many lost reminders the console and the exit message name (compare.json has all)."""


class NotComparable(NotifyChaosError):
    """Two runs whose reminders cannot be lined up: another seed, population or schedule."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunSide(_Model):
    """One of the two runs: its folder and what it was."""

    run: str
    scenario: str
    verdict: str
    started_at: str
    provenance: str
    scheduled: int
    owed: int


class FigureRow(_Model):
    """One figure of both runs: the difference (rehearsal - baseline) and its verdict."""

    figure: str
    about: str
    better: Literal["higher", "lower"] | None
    unit: Literal["share", "count", "seconds"]
    baseline: float | None
    rehearsal: float | None
    difference: float | None
    margin: str | None
    """The margin as given (`0.01`, `2s`, `20%`), `0` by default; None when not judged."""
    verdict: FigureVerdict

    @property
    def worse(self) -> bool:
        """True when this figure makes the rehearsal worse than its baseline."""
        return self.verdict in WORSE


class ChangedReminder(_Model):
    """A reminder both runs scheduled whose state differs: baseline state -> rehearsal state
    (an outcome, or cancelled / not owed / unsettled)."""

    reminder_id: str
    ref: str
    borrower_id: str
    baseline: str
    rehearsal: str
    lost: bool
    """Owed in both, delivered in the baseline and not in the rehearsal."""


class Comparison(_Model):
    """A rehearsal against its baseline; `compare.json` is this model."""

    baseline: RunSide
    rehearsal: RunSide
    figures: list[FigureRow]
    compared: int
    """Reminders both runs scheduled (lined up by id)."""
    owed_in_both: int
    """Of those, owed in both runs."""
    changed: list[ChangedReminder]
    only_baseline: list[str]
    """Reminders only the baseline scheduled (it ran longer); their ids."""
    only_rehearsal: list[str]
    owed_only_baseline: int
    """Of `only_baseline`, how many it owed."""
    owed_only_rehearsal: int
    verdict: Literal["not worse", "worse"]
    reasons: list[str]
    """Why it is worse: each figure worse than its margin allows, then the reminders lost."""

    @property
    def worse(self) -> bool:
        """True when the rehearsal is worse than its baseline."""
        return self.verdict == "worse"

    @property
    def lost(self) -> list[ChangedReminder]:
        """The reminders the rehearsal lost."""
        return [reminder for reminder in self.changed if reminder.lost]

    @property
    def changed_borrowers(self) -> list[str]:
        """The borrowers of the changed reminders, each once, in order."""
        return list(dict.fromkeys(reminder.borrower_id for reminder in self.changed))


def _judged(figure: Figure, baseline: float | None, rehearsal: float | None,
            margin: Margin | None) -> FigureVerdict:
    if figure.better is None:
        return "shown"
    if baseline is not None and rehearsal is None:
        return "lost"
    if baseline is None:
        return "same" if rehearsal is None else "gained"
    assert rehearsal is not None
    if margin is None:
        return "not judged"
    worse = worse_by(margin.figure, baseline, rehearsal)
    if abs(worse) <= NOISE:
        return "same"
    if worse < 0:
        return "better"
    return "worse" if worse > margin.allowance(baseline) + NOISE else "within margin"


def _judged_by_default(name: str, figure: Figure) -> bool:
    """Shares and counts, but the reminders' outcomes: those are what continuity and the lost
    reminders already judge, so a margin on continuity alone is the tolerance it says."""
    return figure.unit != "seconds" and figure.better is not None and name not in OUTCOMES


def _margin_text(figure: Figure, margin: Margin) -> str:
    return f"{margin}s" if figure.unit == "seconds" and not margin.relative else str(margin)


def figure_rows(baseline: Scorecard, rehearsal: Scorecard,
                margins: Mapping[str, Margin] | None = None) -> list[FigureRow]:
    """Every figure of both scorecards, judged against its margin (see the module's rules)."""
    given = margins or {}
    rows = []
    for name, figure in FIGURES.items():
        before, after = figure.value(baseline), figure.value(rehearsal)
        margin = given.get(name)
        if margin is None and _judged_by_default(name, figure):
            margin = Margin(name, 0.0)
        verdict = _judged(figure, before, after, margin)
        rows.append(FigureRow(
            figure=name, about=figure.about, better=figure.better, unit=figure.unit,
            baseline=before, rehearsal=after,
            difference=None if before is None or after is None else after - before,
            margin=None if margin is None or verdict in ("shown", "not judged")
            else _margin_text(figure, margin), verdict=verdict))
    return rows


def _read(folder: Path) -> Journal:
    if not folder.is_dir():
        raise JournalError(f"{folder}: no such run folder")
    journal_dir = folder / "journal"
    if not journal_dir.is_dir():
        raise JournalError(f"{folder}: not a run folder (no journal/ in it)")
    return read_journal(journal_dir)


def _scenario(folder: Path, journal: Journal) -> Scenario:
    started = journal.first(RunStarted)
    if started is None:
        raise JournalError(f"{folder}: the journal has no run.started event: nothing to score")
    return started.scenario


_SAME = ("seed", "population", "changes", "reminders.rate", "reminders.shape",
         "reminders.month", "reminders.lead", "reminders.window")
"""What two runs must share to owe the same reminders."""


def _differs(one: Scenario, two: Scenario) -> str | None:
    """The first of `_SAME` the two scenarios differ in, with both values, or None."""
    for path in _SAME:
        first: object = one
        second: object = two
        for part in path.split("."):
            first, second = getattr(first, part), getattr(second, part)
        if first != second:
            def show(value: object) -> str:
                return (str(value.model_dump(exclude_defaults=True) or "defaults")
                        if isinstance(value, BaseModel) else f"{value:g}"
                        if isinstance(value, float) else str(value))
            return f"{path} {show(first)} in the baseline, {show(second)} in the rehearsal"
    return None


def _counted_over(card: Scorecard, judgement: Judgement, common: int) -> Scorecard:
    """`card` with its counts of reminders (owed, each outcome's) over the first `common`."""
    settled = [judged for judged in judgement.reminders[:common] if judged.settled]
    return card.model_copy(update={"owed": len(settled), "outcomes": count_outcomes(settled)})


def _side(folder: Path, card: Scorecard, judgement: Judgement) -> RunSide:
    return RunSide(run=str(folder), scenario=card.scenario, verdict=card.verdict,
                   started_at=card.started_at, provenance=card.provenance(),
                   scheduled=len(judgement.reminders), owed=card.owed)


def _reminders(before: Judgement, after: Judgement) -> tuple[list[ChangedReminder], int]:
    """The changed reminders of those both scheduled, and how many both owed; raises
    NotComparable when the runs scheduled different reminders."""
    changed, both = [], 0
    pairs = zip(before.reminders, after.reminders, strict=False)
    for number, (one, two) in enumerate(pairs, start=1):
        a, b = one.truth.scheduled, two.truth.scheduled
        if (a.reminder_id, a.ref, a.borrower_id, a.amount) != (b.reminder_id, b.ref,
                                                                b.borrower_id, b.amount):
            raise NotComparable(
                f"not the same schedule: reminder {number} is {a.reminder_id} (ref {a.ref}, "
                f"{a.borrower_id}, {a.amount}) in the baseline and {b.reminder_id} (ref "
                f"{b.ref}, {b.borrower_id}, {b.amount}) in the rehearsal")
        owed = one.owed and two.owed
        both += owed
        was, now = one.state, two.state
        if was != now:
            changed.append(ChangedReminder(
                reminder_id=a.reminder_id, ref=a.ref, borrower_id=a.borrower_id, baseline=was,
                rehearsal=now, lost=owed and was in DELIVERED and now not in DELIVERED))
    return changed, both


def _reasons(worse: list[FigureRow], lost: list[ChangedReminder]) -> list[str]:
    """Each worse figure, then the reminders lost (the first `SHOWN_LOST` named)."""
    def show(value: float | None) -> str:
        return "none" if value is None else f"{value:g}"

    reasons = [f"{row.figure} {show(row.baseline)} -> {show(row.rehearsal)}"
               + (" (lost)" if row.verdict == "lost" else f" (margin {row.margin}, "
                  f"{row.better} is better)") for row in worse]
    if lost:
        named = ", ".join(f"{r.reminder_id} ({r.borrower_id}, {r.baseline} -> {r.rehearsal})"
                          for r in lost[:SHOWN_LOST])
        more = f" and {len(lost) - SHOWN_LOST} more" if len(lost) > SHOWN_LOST else ""
        reasons.append(f"{len(lost)} reminder{'s' * (len(lost) != 1)} lost: {named}{more}")
    return reasons


def compare(baseline: Path | str, rehearsal: Path | str, margins: Iterable[str] = ()
            ) -> Comparison:
    """Compare two run folders, each scored again from its journal (writes nothing).

    `margins` are `NAME=VALUE` (`continuity=0.01`, `p95_latency=2s`, `p95_latency=20%`; a bad
    one is a ValueError). Raises NotComparable when the runs owe different reminders, and
    JournalError when a folder is missing or its journal cannot be scored.
    """
    given = parse_margins(margins)
    first, second = Path(baseline), Path(rehearsal)
    one, two = _read(first), _read(second)
    why = _differs(_scenario(first, one), _scenario(second, two))
    if why is not None:
        raise NotComparable(f"{first} and {second} cannot be compared: {why}")
    (card_one, judged_one), (card_two, judged_two) = scored(one), scored(two)
    changed, both = _reminders(judged_one, judged_two)
    common = min(len(judged_one.reminders), len(judged_two.reminders))
    rows = figure_rows(_counted_over(card_one, judged_one, common),
                       _counted_over(card_two, judged_two, common), given)
    worse = [row for row in rows if row.worse]
    lost = [reminder for reminder in changed if reminder.lost]
    reasons = _reasons(worse, lost)
    only_one, only_two = judged_one.reminders[common:], judged_two.reminders[common:]
    return Comparison(
        baseline=_side(first, card_one, judged_one), rehearsal=_side(second, card_two, judged_two),
        figures=rows, compared=common, owed_in_both=both, changed=changed,
        only_baseline=[judged.reminder_id for judged in only_one],
        only_rehearsal=[judged.reminder_id for judged in only_two],
        owed_only_baseline=sum(judged.owed for judged in only_one),
        owed_only_rehearsal=sum(judged.owed for judged in only_two),
        verdict="worse" if reasons else "not worse", reasons=reasons)
