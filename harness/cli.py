"""The `notifychaos` command: run, validate and re-score scenarios; exit 0 pass, 1 fail, 2 error.

A thin layer over the public API (`harness`): it parses options and prints; the API runs.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
from rich.console import Console

from harness import (
    ExitCode,
    NotifyChaosError,
    RunInterrupted,
    RunResult,
    StartupError,
    load_scenario,
    rehearse,
    score,
    write_reports,
)
from harness.fleet import mocks_up
from harness.report import summary
from harness.schema import scenario_schema_text

# Wide enough for the summary's tables when the output is a file or a CI log.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(exc: NotifyChaosError, debug: bool) -> NoReturn:
    if debug:
        err.print_exception()
    err.print(f"notifychaos: error: {exc}", markup=False, soft_wrap=True)
    if isinstance(exc, StartupError) and exc.log_tail:
        err.print(f"last lines of {exc.component}'s log:", style="dim")
        err.print(exc.log_tail, markup=False, style="dim", soft_wrap=True)
    sys.exit(ExitCode.NOT_RUN)


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _progress(message: str) -> None:
    console.print(f"· {message}", style="dim", markup=False)


def _show(result: RunResult) -> None:
    console.print(summary(result.scorecard))
    console.print(f"scorecard: {result.scorecard_json} (also report.html, junit.xml)",
                  style="dim", markup=False)


@click.group()
@click.version_option(package_name="notifychaos")
def main() -> None:
    """Rehearse notification failures and score reminder continuity."""


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder under which the run folder is made.")
@click.option("--toxiproxy-url", help="Use a running Toxiproxy server instead of starting one.")
@click.option("--toxiproxy-bin", help="Path of the toxiproxy-server binary to start.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key (YAML value), e.g. duration=30s or "
              "target.env.DEFECT=cached-phones; repeatable.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def run(scenario: Path, out: Path, toxiproxy_url: str | None, toxiproxy_bin: str | None,
        overrides: tuple[str, ...], debug: bool) -> None:
    """Run SCENARIO end to end, score it, and exit with the verdict (0 passed, 1 failed,
    2 could not run, 3 inconclusive)."""
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        result = rehearse(scenario, out=out, overrides=overrides, toxiproxy_url=toxiproxy_url,
                          toxiproxy_binary=toxiproxy_bin, progress=_progress)
    except RunInterrupted as interrupted:
        err.print("notifychaos: interrupted; everything it started is stopped")
        _show(interrupted.result)
        sys.exit(ExitCode.NOT_RUN)
    except NotifyChaosError as exc:
        _fail(exc, debug)
    _show(result)
    sys.exit(result.exit_code)


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(scenarios: tuple[Path, ...]) -> None:
    """Check scenario files; print one line per problem, exit 2 if any."""
    bad = 0
    for path in scenarios:
        try:
            model = load_scenario(path)
        except NotifyChaosError as exc:
            err.print(f"notifychaos: error: {exc}", markup=False, soft_wrap=True)
            bad += 1
        else:
            console.print(f"{path}: ok ({model.name}, {len(model.timeline)} fault steps, "
                      f"{len(model.gates)} gates)", markup=False)
    sys.exit(ExitCode.NOT_RUN if bad else ExitCode.PASSED)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def report(run_dir: Path, debug: bool) -> None:
    """Score RUN_DIR again from its journal (also after an interrupted run)."""
    try:
        result = write_reports(run_dir, score(run_dir))
    except NotifyChaosError as exc:
        _fail(exc, debug)
    _show(result)
    sys.exit(result.exit_code)


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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for credentials.")
def mocks_up_command(state: Path, scenario: Path | None, seed: int) -> None:
    """Serve the vendor mocks, ledger and alert sink in the foreground; write a manifest."""
    try:
        mocks_up(state, scenario, seed, console)
    except NotifyChaosError as exc:
        _fail(exc, debug=False)
