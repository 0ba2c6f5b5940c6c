"""Rehearsals from Python: run a scenario, score a run again, write its reports, give the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import yaml

from harness.errors import JournalError
from harness.report import write_reports as write_report_files
from harness.run import Run, RunOptions, new_run_dir
from harness.scenario import Overrides, Scenario, load_scenario, parse_scenario
from harness.scorecard import Scorecard


class ExitCode(IntEnum):
    """The `notifychaos` command's exit codes; `ExitCode.of` maps a verdict to one."""

    PASSED = 0
    FAILED = 1
    NOT_RUN = 2
    INCONCLUSIVE = 3

    @classmethod
    def of(cls, scorecard: Scorecard) -> ExitCode:
        """0 passed (or failed as a demonstration says it must), 1 failed or not judged (an
        interrupted run), 3 inconclusive (the run could not tell)."""
        if scorecard.verdict in ("passed", "failed_as_expected"):
            return cls.PASSED
        return cls.INCONCLUSIVE if scorecard.verdict == "inconclusive" else cls.FAILED


@dataclass(frozen=True)
class RunResult:
    """A scored run: its folder, its scorecard and the report files written into the folder."""

    run_dir: Path
    scorecard: Scorecard
    scorecard_json: Path
    report_html: Path
    junit_xml: Path

    @property
    def exit_code(self) -> ExitCode:
        """The verdict as the `notifychaos` command exits with it (see `ExitCode.of`)."""
        return ExitCode.of(self.scorecard)

    @property
    def passed(self) -> bool:
        """True when the verdict is a pass (passed, or failed as a demonstration expects)."""
        return self.scorecard.passed


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM turned into it) stopped a rehearsal; everything it started is
    stopped but `left_running` (empty unless a process could not be killed), and the
    interrupted run was scored and reported (`result`, verdict not judged)."""

    def __init__(self, result: RunResult, left_running: tuple[str, ...] = ()) -> None:
        super().__init__(f"interrupted; the run's reports are in {result.run_dir}")
        self.result = result
        self.left_running = left_running


def score(run: Path | str) -> Scorecard:
    """Score a run again from its journal: `run` is a run folder (with `journal/`) or a journal
    folder (`*.jsonl`). Writes nothing; raises JournalError when there is nothing to score."""
    folder = Path(run)
    if not folder.is_dir():
        raise JournalError(f"{folder}: no such run folder")
    journal_dir = folder / "journal"
    # DuckDB is loaded only when a run is scored (the engine scores large journals).
    from harness.engine import score_folder

    return score_folder(journal_dir if journal_dir.is_dir() else folder)


def write_reports(run_dir: Path | str, scorecard: Scorecard) -> RunResult:
    """Write `scorecard.json`, `report.html` and `junit.xml` for `scorecard` into `run_dir`
    (made if need be)."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return RunResult(run_dir=folder, scorecard=scorecard,
                     scorecard_json=write_report_files(folder, scorecard),
                     report_html=folder / "report.html", junit_xml=folder / "junit.xml")


def rehearse(scenario: Scenario | Path | str, *, out: Path | str = Path("reports"),
             overrides: Overrides = (), toxiproxy_url: str | None = None,
             toxiproxy_binary: str | None = None,
             progress: Callable[[str], None] | None = None) -> RunResult:
    """Run a scenario end to end, score its journal and write its reports.

    `scenario` is a file or a loaded Scenario; `overrides` set scenario keys first, as
    `["duration=30s"]` (values read as YAML) or `{"duration": "30s"}` (values as they are).
    The run folder is made under `out`. `progress` hears each step (the first names the run
    folder). Without `toxiproxy_url` a Toxiproxy server is started (`toxiproxy_binary`, or
    found). A run that cannot be carried out raises a NotifyChaosError subclass; Ctrl-C
    stops everything, writes the interrupted run's reports and raises RunInterrupted.
    """
    model = _scenario(scenario, overrides)
    say = progress or _quiet
    run_dir = new_run_dir(Path(out), model.name)
    say(f"run folder: {run_dir}")
    options = RunOptions(out=Path(out), toxiproxy_url=toxiproxy_url,
                         toxiproxy_binary=toxiproxy_binary)
    run = Run(model, run_dir, options, say)
    try:
        run.execute()
    except KeyboardInterrupt as interrupt:
        raise RunInterrupted(write_reports(run_dir, score(run_dir)),
                             run.left_running) from interrupt
    return write_reports(run_dir, score(run_dir))


def _scenario(scenario: Scenario | Path | str, overrides: Overrides) -> Scenario:
    if not isinstance(scenario, Scenario):
        return load_scenario(scenario, overrides)
    if not overrides:
        return scenario
    # Overrides go through the file checks (references, placeholders), so the model is checked
    # again as the YAML it was written as (the keys it was given, no defaults).
    written = scenario.model_dump(mode="json", by_alias=True, exclude_unset=True)
    text = yaml.safe_dump(written, allow_unicode=True, sort_keys=False)
    return parse_scenario(text, f"<scenario {scenario.name}>", overrides)


def _quiet(message: str) -> None:
    """A progress listener that hears nothing."""
