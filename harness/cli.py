"""The `notifychaos` command: run, validate, re-score and compare runs; exit 0 pass, 1 fail, 2
error, 3 inconclusive.

A thin layer over the public API (`harness`): it parses options and prints; the API runs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
from rich.console import Console

from harness import (
    ComponentError,
    ExitCode,
    NotifyChaosError,
    RunInterrupted,
    RunResult,
    ScenarioError,
    compare,
    load_scenario,
    rehearse,
    score,
    write_reports,
)
from harness.baseline import Margin, load_baselines, parse_margins, with_defaults
from harness.comparison_report import comparison_summary, write_comparison
from harness.determinism import check_determinism
from harness.fleet import mocks_up
from harness.live import LiveDisplay
from harness.loadgen import TOKEN_ENV, parse_master, run_remote_worker
from harness.report import summary
from harness.runlock import recover
from harness.schema import scenario_schema_text
from harness.suite import GateOn, run_suite, scenario_files, suite_summary, write_suite

# Wide enough for the summary's tables when the output is a file or a CI log. No emoji codes:
# a `:name:` in a scenario's text or an error must print as written.
console = Console(highlight=False, soft_wrap=True, emoji=False,
                  width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def _fail(exc: NotifyChaosError, debug: bool) -> NoReturn:
    if debug:
        err.print_exception()
    err.print(f"notifychaos: error: {exc}", markup=False, soft_wrap=True)
    if isinstance(exc, ComponentError) and exc.log_tail:
        err.print(f"last lines of {exc.component}'s log:", style="dim")
        err.print(exc.log_tail, markup=False, style="dim", soft_wrap=True)
    sys.exit(ExitCode.NOT_RUN)


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _answer_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP stop a run as Ctrl-C does (teardown, reports)."""
    # A background job starts with SIGINT ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    # Under nohup, SIGHUP is ignored on purpose: leave it so.
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _sigterm_as_interrupt)


@contextmanager
def _live() -> Iterator[Callable[[str], None]]:
    """A run's live display; its listener hears the run's progress."""
    with LiveDisplay(console) as live:
        yield live.say


def _show(result: RunResult) -> None:
    console.print(summary(result.scorecard))
    console.print(f"scorecard: {result.scorecard_json} (also report.html, junit.xml)",
                  style="dim", markup=False)


@click.group()
@click.version_option(package_name="notifychaos")
def main() -> None:
    """Rehearse notification failures and score reminder continuity."""


def _margin(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
            ) -> tuple[Margin, ...]:
    try:
        return with_defaults(parse_margins(values).values())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder under which the run folders are made.")
@click.option("--toxiproxy-url", help="Use a running Toxiproxy server instead of starting one.")
@click.option("--toxiproxy-bin", help="Path of the toxiproxy-server binary to start.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key (YAML value), e.g. duration=30s or "
              "target.env.DEFECT=cached-phones; repeatable; applies to every scenario.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Run each scenario N times and show each figure's spread.")
@click.option("--gate-on", type=click.Choice(["worst", "median"]), default="worst",
              show_default=True, help="Over repeats, judge each gate on this aggregate.")
@click.option("--baseline", type=click.Path(path_type=Path, exists=True),
              help="A run folder, its scorecard.json, or a folder of runs (a suite's --out or "
              "suite folder): fail when a figure regressed by more than its margin.")
@click.option("--margin", "margins", multiple=True, metavar="FIGURE=AMOUNT", callback=_margin,
              help="How much worse than the baseline a figure may get: a number, a duration "
              "or a percentage of the baseline (defaults: continuity=0.01, p50/p95/p99_latency="
              "20%); repeatable.")
@click.option("--check-determinism", is_flag=True,
              help="Run the one scenario twice with its seed and compare every reminder's fate "
              "(exit 0 same, 1 differs, 2 could not run).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def run(scenarios: tuple[Path, ...], out: Path, toxiproxy_url: str | None,
        toxiproxy_bin: str | None, overrides: tuple[str, ...], repeat: int, gate_on: GateOn,
        baseline: Path | None, margins: tuple[Margin, ...], check_determinism: bool,
        debug: bool) -> None:
    """Run SCENARIOS (files, or folders of *.yaml) end to end, score them, and exit with the
    verdict (0 passed, 1 failed or regressed, 2 could not run, 3 inconclusive; a suite exits
    with its worst: 2 > 1 > 3 > 0). More than one run, or a baseline, also writes
    OUT/suite-<stamp>/ with junit.xml, index.html and suite.json."""
    _answer_signals()
    files = scenario_files(scenarios)
    if check_determinism:
        _check_determinism(files, out, toxiproxy_url, toxiproxy_bin, overrides, debug)
    if len(files) == 1 and repeat == 1 and baseline is None:
        _run_one(files[0], out, toxiproxy_url, toxiproxy_bin, overrides, debug)
    if not files:
        _fail(ScenarioError(", ".join(map(str, scenarios)), None, "no *.yaml scenario there"),
              debug)
    try:
        baselines = None if baseline is None else load_baselines(baseline)
    except NotifyChaosError as exc:
        _fail(exc, debug)
    suite = run_suite(files, out=out, overrides=overrides, repeat=repeat, gate_on=gate_on,
                      baselines=baselines, margins=margins, toxiproxy_url=toxiproxy_url,
                      toxiproxy_binary=toxiproxy_bin, live=_live, on_run=_show)
    for runs in suite.runs:
        if runs.error is not None:
            # A scenario's own error names its file already.
            where = "" if str(runs.error).startswith(str(runs.path)) else f"{runs.path}: "
            err.print(f"notifychaos: error: {where}{runs.error}", markup=False)
    if suite.interrupted:
        _say_interrupted(suite.left_running)
    try:
        suite = write_suite(out, suite)
    except OSError as exc:
        err.print(f"notifychaos: error: cannot write the suite reports: {exc}", markup=False)
    console.print(suite_summary(suite))
    sys.exit(suite.exit_code)


def _say_interrupted(left_running: tuple[str, ...]) -> None:
    """Tell an interrupted run's end: everything stopped, or what could not be."""
    err.print("notifychaos: interrupted; " + (
        f"could not stop {', '.join(left_running)}" if left_running
        else "everything it started is stopped"), markup=False)


def _run_one(scenario: Path, out: Path, toxiproxy_url: str | None, toxiproxy_bin: str | None,
             overrides: tuple[str, ...], debug: bool) -> NoReturn:
    try:
        with _live() as progress:
            result = rehearse(scenario, out=out, overrides=overrides,
                              toxiproxy_url=toxiproxy_url, toxiproxy_binary=toxiproxy_bin,
                              progress=progress)
    except RunInterrupted as interrupted:
        _say_interrupted(interrupted.left_running)
        _show(interrupted.result)
        sys.exit(ExitCode.NOT_RUN)
    except KeyboardInterrupt:  # before the run began, or while it was being scored
        err.print("notifychaos: interrupted")
        sys.exit(ExitCode.NOT_RUN)
    except NotifyChaosError as exc:
        _fail(exc, debug)
    _show(result)
    sys.exit(result.exit_code)


def _check_determinism(files: list[Path], out: Path, toxiproxy_url: str | None,
                       toxiproxy_bin: str | None, overrides: tuple[str, ...], debug: bool
                       ) -> NoReturn:
    if len(files) != 1:
        raise click.UsageError("--check-determinism takes one scenario file")
    try:
        check = check_determinism(files[0], out=out, overrides=overrides,
                                  toxiproxy_url=toxiproxy_url, toxiproxy_binary=toxiproxy_bin,
                                  live=_live)
    except RunInterrupted as interrupted:
        _say_interrupted(interrupted.left_running)
        sys.exit(ExitCode.NOT_RUN)
    except KeyboardInterrupt:  # before a run began, between the two, or while comparing
        err.print("notifychaos: interrupted")
        sys.exit(ExitCode.NOT_RUN)
    except NotifyChaosError as exc:
        _fail(exc, debug)
    for number, result in enumerate(check.runs, start=1):
        card = result.scorecard
        console.print(f"run {number}: {result.run_dir} ({card.verdict}, continuity "
                      f"{card.continuity:.2%} of {card.owed} owed)", markup=False)
    console.print(check.runs[0].scorecard.provenance(), style="dim", markup=False)
    for line in check.comparison.describe():
        console.print(line, markup=False)
    sys.exit(ExitCode.PASSED if check.comparison.same else ExitCode.FAILED)


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(scenarios: tuple[Path, ...]) -> None:
    """Check SCENARIOS (files, or folders of *.yaml), every one of them; print one line per
    file, exit 2 if any is wrong."""
    bad = 0
    for folder in (path for path in scenarios if path.is_dir() and not scenario_files([path])):
        err.print(f"notifychaos: error: {folder}: no *.yaml scenario there", markup=False)
        bad += 1
    for path in scenario_files(scenarios):
        try:
            model = load_scenario(path)
        except NotifyChaosError as exc:
            err.print(f"notifychaos: error: {exc}", markup=False)
            bad += 1
        else:
            console.print(f"{path}: ok ({model.name}, {len(model.timeline)} fault steps, "
                          f"{len(model.gates)} gates)", markup=False)
    sys.exit(ExitCode.NOT_RUN if bad else ExitCode.PASSED)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def report(run_dir: Path, debug: bool) -> None:
    """Score RUN_DIR again from its journal (also after an interrupted run; a run whose harness
    died is first cleaned up and its journal sealed)."""
    try:
        recovered = recover(run_dir)
    except OSError as exc:  # a read-only copy (a CI artifact) can still be scored
        err.print(f"notifychaos: cannot clean up or seal {run_dir}: {exc}", markup=False)
    else:
        if recovered is not None:
            err.print(f"notifychaos: {recovered}", markup=False)
    try:
        result = write_reports(run_dir, score(run_dir))
    except NotifyChaosError as exc:
        _fail(exc, debug)
    except OSError as exc:
        _fail(NotifyChaosError(f"cannot write the reports into {run_dir}: {exc}"), debug)
    _show(result)
    sys.exit(result.exit_code)


def _compare_margins(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
                     ) -> tuple[str, ...]:
    try:
        parse_margins(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    return values


@main.command("compare")
@click.argument("baseline_run", type=click.Path(path_type=Path))
@click.argument("rehearsal_run", type=click.Path(path_type=Path))
@click.option("--margin", "margins", multiple=True, metavar="NAME=VALUE",
              callback=_compare_margins,
              help="How much worse than the baseline a figure may get: a number, a duration "
              "(p95_latency=2s) or a share of the baseline value (20%); shares and counts are "
              "judged with margin 0 by default, seconds only when given one; repeatable.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for compare.json and compare.html (default: the rehearsal's run "
              "folder).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def compare_command(baseline_run: Path, rehearsal_run: Path, margins: tuple[str, ...],
                    out: Path | None, debug: bool) -> None:
    """Compare REHEARSAL_RUN with BASELINE_RUN (run folders, each scored again from its
    journal): every figure side by side and the reminders whose outcome changed; exit 0 not
    worse, 1 worse than the baseline by more than a margin (naming the reminders lost), 2 the runs
    cannot be compared (another seed, population or schedule; a journal that cannot be
    scored), a bad margin or no such folder."""
    try:
        comparison = compare(baseline_run, rehearsal_run, margins)
    except NotifyChaosError as exc:
        _fail(exc, debug)
    folder = rehearsal_run if out is None else out
    try:
        data, _ = write_comparison(folder, comparison)
    except OSError as exc:
        _fail(NotifyChaosError(f"cannot write the comparison into {folder}: {exc}"), debug)
    console.print(comparison_summary(comparison))
    console.print(f"comparison: {data} (also compare.html)", style="dim", markup=False)
    sys.exit(ExitCode.FAILED if comparison.worse else ExitCode.PASSED)


@main.command("load-worker")
@click.option("--master", required=True, metavar="HOST:PORT",
              help="The run's Locust master, as the run prints it (listening on its host's "
              "127.0.0.1: forward the port, e.g. with ssh -L).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), required=True,
              help="Reminders a second in all (the run prints it).")
@click.option("--users", type=click.IntRange(min=1), required=True,
              help="Ticking users in all (the run prints it).")
def load_worker(master: str, rate: float, users: int) -> None:
    """Join a run's Locust master as one of its load.remote_workers: a Locust worker of the
    harness's locustfile, with the run's token from NOTIFYCHAOS_TOKEN (never on the command
    line). Ends when the run's load ends, with the worker's exit code."""
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        err.print(f"notifychaos: error: load-worker: {TOKEN_ENV} is not set; expected the "
                  "run's token (\"token\" in the run folder's mocks-manifest.json)",
                  markup=False)
        sys.exit(ExitCode.NOT_RUN)
    try:
        parse_master(master)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    sys.exit(run_remote_worker(master, rate, users, token))


@main.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editors: see the README's modeline)."""
    click.echo(scenario_schema_text(), nl=False)


@main.group()
def mocks() -> None:
    """The mock fleet on its own."""


@mocks.command("up")
@click.option("--state", type=click.Path(path_type=Path), default=Path("mocks-state"),
              show_default=True, help="Folder for the manifest, the test CA and the record.")
@click.option("--scenario", type=click.Path(path_type=Path),
              help="Serve this scenario's vendors (default: one of each kind).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for the borrowers and the fates.")
def mocks_up_command(state: Path, scenario: Path | None, seed: int) -> None:
    """Serve the vendor mocks, ledger and alert sink in the foreground; write a manifest."""
    try:
        mocks_up(state, scenario, seed, console)
    except NotifyChaosError as exc:
        _fail(exc, debug=False)
