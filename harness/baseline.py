"""A run's figures against a baseline scorecard's: which regressed by more than their margin.

A margin is how much worse than the baseline a figure may get: an amount in the figure's unit
(`continuity=0.01`, `p95_latency=2s`) or a share of the baseline value (`p95_latency=20%`).
Which way a figure is better is its `Figure.better` (harness/scorecard.py). The defaults compare
continuity (0.01) and the p50 / p95 / p99 latencies (20 %).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from harness.durations import parse_duration
from harness.errors import JournalError
from harness.scorecard import FIGURES, Scorecard


@dataclass(frozen=True)
class Margin:
    """How much worse than the baseline `figure` may get: `amount` in the figure's unit, or
    (`relative`) as a share of the baseline value."""

    figure: str
    amount: float
    relative: bool = False

    def allowance(self, baseline: float) -> float:
        """The change the margin allows against `baseline`, in the figure's unit."""
        return abs(baseline) * self.amount if self.relative else self.amount

    def __str__(self) -> str:
        return f"{self.amount:.0%}" if self.relative else f"{self.amount:g}"


DEFAULT_MARGINS: tuple[Margin, ...] = (
    Margin("continuity", 0.01),
    Margin("p50_latency", 0.2, relative=True),
    Margin("p95_latency", 0.2, relative=True),
    Margin("p99_latency", 0.2, relative=True),
)


def parse_margin(text: str) -> Margin:
    """`figure=amount`: a number, a duration (`2s`, `500ms`) or a percentage (`20%`)."""
    figure, sep, raw = text.partition("=")
    figure, raw = figure.strip(), raw.strip()
    if not sep or not raw:
        raise ValueError(f"expected FIGURE=AMOUNT such as continuity=0.01, got {text!r}")
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; known: {', '.join(FIGURES)}")
    try:
        if raw.endswith("%"):
            return Margin(figure, float(raw[:-1]) / 100, relative=True)
        try:
            return Margin(figure, float(raw))
        except ValueError:
            return Margin(figure, parse_duration(raw))
    except ValueError as exc:
        raise ValueError(f"margin {text!r}: {exc}") from exc


def with_defaults(margins: Iterable[Margin]) -> tuple[Margin, ...]:
    """The default margins, each replaced by a given one for the same figure, then the rest."""
    given = {margin.figure: margin for margin in margins}
    defaults = tuple(given.pop(m.figure, m) for m in DEFAULT_MARGINS)
    return defaults + tuple(given.values())


NOISE = 1e-9
"""A hair of float noise (0.99 - 0.98 > 0.01) must not turn "exactly the margin" into worse."""


def higher_is_better(figure: str) -> bool:
    """Whether `figure` improves as it grows (continuity), rather than as it shrinks."""
    return FIGURES[figure].better == "higher"


def worse_by(figure: str, baseline: float, now: float) -> float:
    """How much worse `now` is than `baseline` in the figure's direction (negative: better)."""
    return baseline - now if higher_is_better(figure) else now - baseline


def parse_margins(texts: Iterable[str]) -> dict[str, Margin]:
    """`NAME=VALUE` margins by figure (see `parse_margin`); an unknown, never judged or repeated
    figure, or a negative amount, is a ValueError saying so in one line."""
    margins: dict[str, Margin] = {}
    for text in texts:
        name = text.partition("=")[0].strip()
        if name not in FIGURES:
            close = difflib.get_close_matches(name, FIGURES, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(FIGURES)}"
            raise ValueError(f"margin {text!r}: no figure {name!r}{hint}")
        if FIGURES[name].better is None:
            raise ValueError(f"margin {text!r}: {name} is never judged (neither higher nor "
                             "lower is better)")
        if name in margins:
            raise ValueError(f"margin {text!r}: {name} has a margin already")
        margin = parse_margin(text)
        if margin.amount < 0:
            raise ValueError(f"margin {text!r}: expected an amount of at least 0")
        margins[name] = margin
    return margins


@dataclass(frozen=True)
class FigureComparison:
    """One figure against the baseline. A figure the baseline lacks is not compared (never a
    regression); one that the baseline has and this run lacks (no reminder arrived) is."""

    figure: str
    baseline: float | None
    now: float | None
    margin: Margin

    @property
    def regressed(self) -> bool:
        """True when the figure got worse than the baseline by more than its margin."""
        if self.baseline is None:
            return False
        if self.now is None:
            return True
        return (worse_by(self.figure, self.baseline, self.now)
                > self.margin.allowance(self.baseline) + NOISE)

    def describe(self) -> str:
        """`figure: baseline B, now N, margin M`, as the console and JUnit show it."""
        def show(value: float | None) -> str:
            return "none" if value is None else f"{value:g}"

        return (f"{self.figure}: baseline {show(self.baseline)}, now {show(self.now)}, "
                f"margin {self.margin} "
                f"({'higher' if higher_is_better(self.figure) else 'lower'} is better)")


@dataclass(frozen=True)
class BaselineCheck:
    """A scenario's figures against its baseline's."""

    scenario: str
    baseline_source: str
    figures: tuple[FigureComparison, ...]

    @property
    def regressions(self) -> tuple[FigureComparison, ...]:
        """The figures that got worse by more than their margin."""
        return tuple(figure for figure in self.figures if figure.regressed)

    @property
    def passed(self) -> bool:
        """True when no figure regressed."""
        return not self.regressions


def compare_values(scenario: str, baseline: Mapping[str, float | None],
                   now: Mapping[str, float | None], margins: Sequence[Margin],
                   baseline_source: str = "") -> BaselineCheck:
    """Each margin's figure of `now` against `baseline` (figure name -> value)."""
    return BaselineCheck(scenario, baseline_source, tuple(
        FigureComparison(m.figure, baseline.get(m.figure), now.get(m.figure), m)
        for m in margins))


def compare(baseline: Scorecard, now: Scorecard, margins: Sequence[Margin] = DEFAULT_MARGINS,
            baseline_source: str = "") -> BaselineCheck:
    """`now`'s figures against `baseline`'s, one comparison per margin."""
    def values(card: Scorecard) -> dict[str, float | None]:
        return {m.figure: card.metric(m.figure) for m in margins}

    return compare_values(now.scenario, values(baseline), values(now), margins, baseline_source)


def load_baselines(path: Path) -> dict[str, tuple[Path, Scorecard]]:
    """Baseline scorecards by scenario name, from a `scorecard.json`, a run folder, a suite
    folder (its `suite.json` lists its runs' scorecards) or a folder of run folders (a suite's
    `--out`); of several runs of one scenario, the latest counts."""
    if path.is_file():
        files = [path]
    elif (path / "scorecard.json").is_file():
        files = [path / "scorecard.json"]
    elif (path / "suite.json").is_file():
        try:
            listed = json.loads((path / "suite.json").read_text(encoding="utf-8"))["scorecards"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise JournalError(f"{path / 'suite.json'}: not a suite's summary: {exc}") from exc
        files = [path / str(name) for name in listed]
    else:
        files = sorted(path.glob("*/scorecard.json"))
    if not files:
        raise JournalError(f"{path}: no scorecard.json there (give a run folder, its "
                           "scorecard.json or a folder of run folders)")
    found: dict[str, tuple[Path, Scorecard]] = {}
    for file in files:
        try:
            card = Scorecard.model_validate(json.loads(file.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError) as exc:
            raise JournalError(f"{file}: not a scorecard: {exc}") from exc
        held = found.get(card.scenario)
        if held is None or held[1].started_at <= card.started_at:
            found[card.scenario] = (file, card)
    return found
