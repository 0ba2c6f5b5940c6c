"""The scorecard as one self-contained HTML page, for people who were not watching the run."""

from __future__ import annotations

import re
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader

from harness.chart import run_chart, step_label
from harness.junit import sla_failed_the_run
from harness.scorecard import FIGURES, OUTCOMES, Outcome, Scorecard

# autoescape always: select_autoescape() goes by extension and left `.html.j2` unescaped
_TEMPLATES = Environment(loader=PackageLoader("harness"), autoescape=True,
                         keep_trailing_newline=True)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _measured(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


_TEMPLATES.filters.update(seconds=_seconds, percent=_percent, measured=_measured)


@dataclass(frozen=True)
class Banner:
    """The verdict as the page's headline: its style, its words and why."""

    style: str
    headline: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Shown:
    """One figure of the registry as printed, with what it means."""

    name: str
    value: str
    about: str


@dataclass(frozen=True)
class OutcomeBar:
    """One outcome in the breakdown: its count, its share of the owed reminders."""

    name: Outcome
    count: int
    share: float
    about: str

    @property
    def width(self) -> str:
        """The bar's CSS width."""
        return f"{self.share * 100:.1f}%"


def _failed_gates(card: Scorecard) -> tuple[str, ...]:
    return tuple(f"{g.expr} (measured {_measured(g.value)})" for g in card.gates if not g.passed)


def _banner(card: Scorecard) -> Banner:
    if card.verdict == "passed":
        return Banner("pass", "PASSED", ("every gate held and every fault was seen to act",))
    if card.verdict == "failed":
        sla = tuple(f"{t.vendor} broke its SLA: {t.term} (measured {_measured(t.value)}); "
                    "the scenario sets fail_on_sla_breach"
                    for t in card.slas if not t.met) if sla_failed_the_run(card) else ()
        upgrades = tuple(upgrade.describe() for upgrade in card.upgrades if upgrade.failed)
        return Banner("fail", "FAILED", _failed_gates(card) + upgrades + sla)
    if card.verdict == "inconclusive":
        return Banner("inconclusive", "INCONCLUSIVE",
                      ("not a pass: the gates held, but the run cannot tell whether the "
                       "notifier copes", *card.inconclusive))
    if card.verdict == "failed_as_expected":
        return Banner("expected", "FAILED AS EXPECTED",
                      ("a demonstration: this scenario shows a failure and failed exactly the "
                       "gates it says it fails", *_failed_gates(card)))
    return Banner("unjudged", f"NOT JUDGED: the run {card.status}",
                  ("the run did not complete, so its gates were not judged",
                   *([card.error] if card.error else [])))


def _shown(card: Scorecard) -> tuple[Shown, ...]:
    """Every registered figure but the outcomes (the breakdown has those)."""
    shown = []
    for name, figure in FIGURES.items():
        if name in OUTCOMES:
            continue
        value = figure.value(card)
        text = (_percent(value) if figure.unit == "share"
                else _seconds(value) if figure.unit == "seconds"
                else _measured(value))
        shown.append(Shown(name, text, figure.about))
    return tuple(shown)


def _outcomes(card: Scorecard) -> tuple[OutcomeBar, ...]:
    whole = max(card.owed, sum(card.outcomes.values()), 1)
    return tuple(OutcomeBar(name, card.outcomes.get(name, 0),
                            card.outcomes.get(name, 0) / whole, FIGURES[name].about)
                 for name in OUTCOMES)


def several_channels(card: Scorecard) -> bool:
    """Whether the run allowed channels beside SMS: only then are channels shown (with SMS
    alone every delivery is by SMS)."""
    return len(card.channel_mix) > 1


@dataclass(frozen=True)
class ChannelRow:
    """One allowed channel: the reminders it delivered correctly, its share outside faults."""

    channel: str
    delivered: int
    share: str
    about: str


def _channels(card: Scorecard) -> tuple[ChannelRow, ...]:
    rows = []
    for channel, delivered in card.channel_mix.items():
        figure = FIGURES[f"{channel}_share"]
        rows.append(ChannelRow(channel, delivered, _percent(figure.value(card)), figure.about))
    return tuple(rows)


def _about(expr: str) -> str:
    """What the figure a gate names means (its leading name), or nothing if it is unknown."""
    match = re.match(r"\s*([a-z0-9_]+)", expr)
    figure = FIGURES.get(match.group(1)) if match else None
    return "" if figure is None else figure.about


def html_report(card: Scorecard) -> str:
    """The page: verdict, continuity, the run chart, outcomes, the channel mix, gates apart
    from the vendors' SLA verdicts, faults, vendors and the worst reminders' traces."""
    anchors: dict[str, str] = {}  # a gate's witness, by reminder id or ref, to its trace
    for i, trace in enumerate(card.worst):
        anchors.setdefault(trace.reminder_id, f"trace-{i}")
        anchors.setdefault(trace.ref, f"trace-{i}")
    return _TEMPLATES.get_template("report.html.j2").render(
        card=card, banner=_banner(card), figures=_shown(card), outcomes=_outcomes(card),
        chart=run_chart(card.series, card.faults, card.owed_over_time, card.calendar),
        step_label=step_label, about=_about,
        anchors=anchors, sla_decides=sla_failed_the_run(card),
        channels=_channels(card) if several_channels(card) else ())
