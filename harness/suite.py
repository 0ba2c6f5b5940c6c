"""Suites: scenarios (each maybe repeated) run one after another, judged together against an
optional baseline, with one JUnit file, an index page and a console summary for the lot.

Over repeats a scenario is judged on an aggregate of each gate's figure: the worst run's
(default) or the median. A suite exits with the worst of its scenarios' codes, in the order
2 (could not run, or interrupted) > 1 (failed, or regressed against the baseline) >
3 (inconclusive) > 0 (passed).
"""

from __future__ import annotations

import html
import json
import os
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from harness.baseline import BaselineCheck, Margin, compare_values, higher_is_better
from harness.errors import NotifyChaosError
from harness.gates import Gate
from harness.junit import suite_junit_xml
from harness.rehearsal import ExitCode, RunInterrupted, RunResult, rehearse
from harness.scenario import Overrides, Scenario, load_scenario
from harness.scorecard import GateResult, Scorecard, Verdict
from harness.verdict import verdict

GateOn = Literal["worst", "median"]

# The figures whose spread over repeats is shown, besides those the gates name.
SPREAD_FIGURES = ("continuity", "owed", "p50_latency", "p95_latency", "p99_latency",
                  "longest_blackout", "max_recovery", "duplicates", "missed", "late",
                  "wrong_recipient", "detection_time", "undetected_faults")

_SEVERITY = (ExitCode.PASSED, ExitCode.INCONCLUSIVE, ExitCode.FAILED, ExitCode.NOT_RUN)


def worst_code(codes: Sequence[ExitCode]) -> ExitCode:
    """The most severe exit code: 2 > 1 > 3 > 0 (0 for none)."""
    return max(codes, key=_SEVERITY.index, default=ExitCode.PASSED)


def scenario_files(paths: Sequence[Path]) -> list[Path]:
    """The files named, a folder standing for every `*.yaml` in it (sorted)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return files


@dataclass(frozen=True)
class Spread:
    """A figure over a scenario's runs (runs without the figure left out; None if none has it)."""

    figure: str
    low: float | None
    median: float | None
    high: float | None


@dataclass(frozen=True)
class GateVerdict:
    """A gate judged on the aggregate of its figure over a scenario's runs."""

    expr: str
    value: float | None
    passed: bool
    witnesses: tuple[str, ...]


@dataclass(frozen=True)
class ScenarioRuns:
    """One scenario of a suite: its runs, and the verdict over them (or why it could not run)."""

    path: Path
    scenario: str
    results: tuple[RunResult, ...] = ()
    error: str | None = None
    gate_on: GateOn = "worst"
    verdict: Verdict = "not_judged"
    verdict_code: ExitCode = ExitCode.NOT_RUN
    gates: tuple[GateVerdict, ...] = ()
    inconclusive: tuple[str, ...] = ()
    spreads: tuple[Spread, ...] = ()
    comparison: BaselineCheck | None = None
    baseline_missing: bool = False

    @property
    def exit_code(self) -> ExitCode:
        """2 when it could not run; 1 when it failed or regressed against the baseline; else
        the verdict's code."""
        if self.error is not None:
            return ExitCode.NOT_RUN
        if self.comparison is not None and not self.comparison.passed:
            return worst_code([self.verdict_code, ExitCode.FAILED])
        return self.verdict_code


@dataclass(frozen=True)
class SuiteResult:
    """A suite's scenarios, where its reports went, whether Ctrl-C cut it short, and what the
    interrupted run could not stop (empty unless a process could not be killed)."""

    runs: tuple[ScenarioRuns, ...]
    folder: Path | None = None
    interrupted: bool = False
    files: dict[str, Path] = field(default_factory=dict)
    left_running: tuple[str, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        """The worst scenario's code; 2 when interrupted."""
        codes = [runs.exit_code for runs in self.runs]
        return worst_code([*codes, ExitCode.NOT_RUN] if self.interrupted else codes)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    # A figure most runs lack (no reminder arrived) has no median.
    if len(present) * 2 < len(values) or not present:
        return None
    return float(statistics.median(present))


def _worst(values: Sequence[float | None], higher_is_better: bool) -> float | None:
    if any(v is None for v in values):
        return None
    present = [v for v in values if v is not None]
    return min(present) if higher_is_better else max(present)


def spread(figure: str, cards: Sequence[Scorecard]) -> Spread:
    """`figure`'s min / median / max over `cards`."""
    values = [card.metric(figure) for card in cards]
    present = [v for v in values if v is not None]
    return Spread(figure, min(present, default=None), _median(values) if present else None,
                  max(present, default=None))


def _gate_verdict(gate: Gate, cards: Sequence[Scorecard], index: int, gate_on: GateOn
                  ) -> GateVerdict:
    results = [card.gates[index] for card in cards]
    values = [result.value for result in results]
    if gate_on == "median":
        value = _median(values)
        passed = gate.holds(value)
    else:
        # The worst value is the one of a failing run if any (for == / != there is no order).
        failing = [r.value for r in results if not r.passed] or values
        value = (_worst(failing, gate.op in (">=", ">")) if gate.op in (">=", ">", "<=", "<")
                 else failing[0])
        passed = all(result.passed for result in results)
    witnesses = next((r.witnesses for r in results if not r.passed and r.value == value), [])
    return GateVerdict(gate.expr, value, passed, () if passed else tuple(witnesses))


def judge(path: Path, model: Scenario, results: Sequence[RunResult], gate_on: GateOn = "worst",
          baseline: tuple[str, Scorecard] | None = None,
          margins: Sequence[Margin] = (), baseline_given: bool = False) -> ScenarioRuns:
    """The verdict over a scenario's runs: one run's own verdict, or over repeats the verdict
    (by the scenario's rules) on each gate's aggregate figure, status, inconclusive reasons
    and SLA breaches; compared with `baseline` (source, scorecard) on `margins`."""
    cards = [result.scorecard for result in results]
    if len(cards) == 1:
        [card] = cards
        gates = tuple(GateVerdict(g.expr, g.value, g.passed, tuple(g.witnesses))
                      for g in card.gates)
        judged_verdict, code, reasons = card.verdict, ExitCode.of(card), tuple(card.inconclusive)
    else:
        gates = tuple(_gate_verdict(gate, cards, i, gate_on) for i, gate in enumerate(model.gates))
        unfinished = [card.status for card in cards if card.status != "completed"]
        with_reasons = [card for card in cards if card.inconclusive]
        counts = (len(with_reasons) * 2 > len(cards)) if gate_on == "median" else bool(with_reasons)
        reasons = tuple(dict.fromkeys(r for card in with_reasons for r in card.inconclusive)
                        ) if counts else ()
        breaches = [card.sla_breaches for card in cards]
        aggregate = cards[0].model_copy(update={
            "status": unfinished[0] if unfinished else "completed",
            "gates": [GateResult(expr=g.expr, value=g.value, passed=g.passed,
                                 witnesses=list(g.witnesses)) for g in gates],
            "inconclusive": list(reasons),
            "sla_breaches": (statistics.median_low(breaches) if gate_on == "median"
                             else max(breaches))})
        judged_verdict = verdict(aggregate, model)
        code = ExitCode.of(aggregate.model_copy(update={"verdict": judged_verdict}))
    figures = list(dict.fromkeys([*SPREAD_FIGURES, *(gate.metric for gate in model.gates)]))
    comparison = None
    if baseline is not None:
        source, base = baseline

        def now(figure: str) -> float | None:
            values = [card.metric(figure) for card in cards]
            return (_median(values) if gate_on == "median"
                    else _worst(values, higher_is_better(figure)))

        comparison = compare_values(
            model.name, {m.figure: base.metric(m.figure) for m in margins},
            {m.figure: now(m.figure) for m in margins}, margins, source)
    return ScenarioRuns(
        path=path, scenario=model.name, results=tuple(results), gate_on=gate_on,
        verdict=judged_verdict, verdict_code=code, gates=gates, inconclusive=reasons,
        spreads=tuple(spread(f, cards) for f in figures) if len(cards) > 1 else (),
        comparison=comparison, baseline_missing=baseline_given and baseline is None)


def run_suite(paths: Sequence[Path], *, out: Path, overrides: Overrides = (), repeat: int = 1,
              gate_on: GateOn = "worst",
              baselines: Mapping[str, tuple[Path, Scorecard]] | None = None,
              margins: Sequence[Margin] = (), toxiproxy_url: str | None = None,
              toxiproxy_binary: str | None = None,
              live: Callable[[], AbstractContextManager[Callable[[str], None]]] | None = None,
              on_run: Callable[[RunResult], None] | None = None) -> SuiteResult:
    """Run each scenario `repeat` times, one run after another, and judge each; `overrides`
    apply to every scenario. A scenario that cannot run is recorded and the suite goes on;
    Ctrl-C stops the suite (the interrupted run is kept). Each run is made inside a fresh
    `live()` context whose value hears the run's progress; `on_run` hears each finished run."""
    done: list[ScenarioRuns] = []
    for path in paths:
        results: list[RunResult] = []
        model: Scenario | None = None
        try:
            model = load_scenario(path, overrides)
            for _ in range(repeat):
                with (live or _quiet)() as progress:
                    result = rehearse(model, out=out, toxiproxy_url=toxiproxy_url,
                                      toxiproxy_binary=toxiproxy_binary, progress=progress)
                results.append(result)
                if on_run is not None:
                    on_run(result)
        except RunInterrupted as interrupted:
            results.append(interrupted.result)
            assert model is not None  # a run was under way, so its scenario was loaded
            done.append(judge(path, model, results, gate_on))
            return SuiteResult(tuple(done), interrupted=True,
                               left_running=interrupted.left_running)
        except NotifyChaosError as exc:
            done.append(ScenarioRuns(path, model.name if model else path.stem,
                                     tuple(results), error=str(exc), gate_on=gate_on))
            continue
        found = None
        if baselines is not None and model.name in baselines:
            source, card = baselines[model.name]
            found = (str(source), card)
        done.append(judge(path, model, results, gate_on, found, margins,
                          baseline_given=baselines is not None))
    return SuiteResult(tuple(done))


@contextmanager
def _quiet() -> Iterator[Callable[[str], None]]:
    """No display: a listener that hears nothing."""
    yield lambda message: None


def write_suite(out: Path, suite: SuiteResult) -> SuiteResult:
    """Write `junit.xml`, `index.html` and `suite.json` into a fresh `<out>/suite-<stamp>`."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in ("", *(f"-{n}" for n in range(2, 100))):
        folder = out / f"suite-{stamp}{suffix}"
        try:
            folder.mkdir(parents=True)
            break
        except FileExistsError:
            continue
    else:
        raise NotifyChaosError(f"cannot make a suite folder under {out}")
    folder = folder.resolve()
    files = {"junit": folder / "junit.xml", "index": folder / "index.html",
             "json": folder / "suite.json"}
    files["junit"].write_text(suite_junit_xml(suite.runs, name=folder.name), encoding="utf-8")
    files["index"].write_text(index_html(suite, folder), encoding="utf-8")
    scorecards = [os.path.relpath(r.scorecard_json, folder)
                  for runs in suite.runs for r in runs.results]
    summary = {"exit_code": int(suite.exit_code), "interrupted": suite.interrupted,
               "scorecards": scorecards,
               "scenarios": [{"scenario": runs.scenario, "path": str(runs.path),
                              "verdict": runs.verdict, "exit_code": int(runs.exit_code),
                              "error": runs.error,
                              "regressions": [c.describe() for c in runs.comparison.regressions]
                              if runs.comparison else []} for runs in suite.runs]}
    files["json"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return SuiteResult(suite.runs, folder, suite.interrupted, files, suite.left_running)


_LABELS = {ExitCode.PASSED: "passed", ExitCode.FAILED: "FAILED", ExitCode.NOT_RUN: "NOT RUN",
           ExitCode.INCONCLUSIVE: "INCONCLUSIVE"}


def _label(runs: ScenarioRuns) -> str:
    if runs.error is not None:
        return "NOT RUN"
    if runs.comparison is not None and not runs.comparison.passed:
        return f"REGRESSED ({runs.verdict.replace('_', ' ')})"
    return runs.verdict.replace("_", " ").upper() if runs.exit_code else runs.verdict.replace(
        "_", " ")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def index_html(suite: SuiteResult, folder: Path) -> str:
    """A self-contained page: the suite's verdict, and per scenario its verdict, its gates'
    aggregates, its baseline regressions and a link to each run's report."""
    e = html.escape
    rows = []
    for runs in suite.runs:
        links = " ".join(
            f'<a href="{e(os.path.relpath(r.report_html, folder))}">run {n} '
            f"({e(r.scorecard.verdict.replace('_', ' '))}, continuity "
            f"{r.scorecard.continuity:.2%})</a>" for n, r in enumerate(runs.results, 1))
        notes = []
        if runs.error is not None:
            notes.append(f"could not run: {e(runs.error)}")
        notes += [f"gate {e(g.expr)} failed (measured {e(_num(g.value))})"
                  for g in runs.gates if not g.passed]
        notes += [f"inconclusive: {e(reason)}" for reason in runs.inconclusive]
        if runs.comparison is not None:
            notes += [f"regressed: {e(c.describe())}" for c in runs.comparison.regressions]
        if runs.baseline_missing:
            notes.append("no baseline run of this scenario")
        status = "ok" if runs.exit_code == ExitCode.PASSED else "bad"
        rows.append(f'<tr class="{status}"><td>{e(runs.scenario)}</td>'
                    f"<td>{e(_label(runs))}</td><td>{int(runs.exit_code)}</td>"
                    f"<td>{links or '-'}</td><td>{'<br>'.join(notes)}</td></tr>")
    code = suite.exit_code
    head = f"{_LABELS[code]} (exit {int(code)})" + (" — interrupted" if suite.interrupted else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>notifychaos suite: {e(head)}</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em;
text-align: left; vertical-align: top; }}
tr.bad td:nth-child(2) {{ color: #b00; font-weight: bold; }}
tr.ok td:nth-child(2) {{ color: #070; }}
</style></head>
<body><h1>notifychaos suite: {e(head)}</h1>
<table><tr><th>scenario</th><th>verdict</th><th>exit</th><th>runs</th><th>why</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""


def suite_summary(suite: SuiteResult) -> Group:
    """The console's closing words on a suite: a line per scenario, spreads over repeats,
    baseline comparisons, and the suite's exit code."""
    parts: list[RenderableType] = [Text("suite", "bold")]
    for runs in suite.runs:
        style = "green" if runs.exit_code == ExitCode.PASSED else "bold red"
        runs_note = f"{len(runs.results)} run(s), gated on the {runs.gate_on}"
        parts.append(Text.assemble((f"{_label(runs)}", style), f"  {runs.scenario}  ({runs_note})"))
        if runs.error is not None:
            parts.append(Text(f"  could not run: {runs.error}", "red"))
        if runs.spreads:
            table = Table("figure", "min", "median", "max", box=None, pad_edge=False)
            for s in runs.spreads:
                table.add_row(s.figure, _num(s.low), _num(s.median), _num(s.high))
            parts.append(table)
            parts.extend(Text(f"  gate {g.expr}: {runs.gate_on} "
                              f"{_num(g.value)} {'pass' if g.passed else 'FAIL'}",
                              "dim" if g.passed else "red") for g in runs.gates)
        if runs.comparison is not None:
            for c in runs.comparison.figures:
                mark = "REGRESSED" if c.regressed else "ok"
                parts.append(Text(f"  baseline {mark}: {c.describe()}",
                                  "bold red" if c.regressed else "dim"))
        if runs.baseline_missing:
            parts.append(Text("  no baseline run of this scenario (not compared)", "yellow"))
    code = suite.exit_code
    parts.append(Text(f"suite {_LABELS[code]} (exit {int(code)})"
                      + (", interrupted" if suite.interrupted else ""),
                      "bold green" if code == ExitCode.PASSED else "bold red"))
    if suite.folder is not None:
        parts.append(Text(f"suite reports: {suite.files['index']} (also junit.xml, suite.json)",
                          "dim"))
    return Group(*parts)
