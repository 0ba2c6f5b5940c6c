"""The public API: exactly the curated names, each documented; rehearse, score, write_reports."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import harness
from harness import (
    ExitCode,
    JournalError,
    NotifyChaosError,
    RunInterrupted,
    RunResult,
    Scenario,
    ScenarioError,
    Scorecard,
    load_scenario,
    rehearse,
    score,
    write_reports,
)
from harness.continuity import score as score_journal
from harness.journal import (
    ComponentReady,
    Event,
    FaultTouched,
    RunEnded,
    RunStarted,
    read_journal,
)
from harness.scorecard import Verdict
from tests.e2e.conftest import pid_alive
from tests.harness.journals import (
    BASE,
    SCENARIO,
    T0,
    journal,
    owed,
    run_folder,
    scenario,
    sent,
    step,
)

CURATED = [
    "Comparison", "ComponentError", "ComponentLostError", "ExitCode", "FaultInjectionError",
    "JournalError", "LoadError", "NotifyChaosError", "RunInterrupted", "RunResult", "Scenario",
    "ScenarioError", "Scorecard", "StartupError", "compare", "load_scenario", "rehearse", "score",
    "write_reports",
]
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scenarios" / "primary-vendor-outage.yaml"
# The demo made short and calm: no fault, so a reference notifier passes in about 20 s.
SHORT: dict[str, Any] = {"duration": "8s", "timeline": [], "reminders.window": "4s",
                         "reminders.lead": "1s", "gates": ["continuity >= 0.9",
                                                           "duplicates == 0"]}


def test_the_api_is_exactly_the_curated_names_each_importable_and_documented() -> None:
    assert harness.__all__ == CURATED
    star: dict[str, Any] = {}
    exec("from harness import *", star)
    assert sorted(set(star) - {"__builtins__"}) == sorted(CURATED)
    for name in CURATED:
        value = getattr(harness, name)
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("harness."), name
    # Nothing public beside the API but the package's own modules.
    extra = [name for name in dir(harness) if not name.startswith("_") and name not in CURATED
             and getattr(getattr(harness, name), "__name__", "") != f"harness.{name}"]
    assert extra == []
    internal = "Run"
    with pytest.raises(AttributeError, match="no attribute 'Run'"):
        getattr(harness, internal)


def test_the_readme_documents_every_name_of_the_api() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.split(r"\n##+ ", readme.split("### Using it from Python\n", 1)[1], maxsplit=1)[0]
    assert [name for name in CURATED if f"`{name}" not in section] == []


def test_the_exception_tree_is_exported_under_one_base() -> None:
    errors = [getattr(harness, name) for name in CURATED if name.endswith("Error")]
    assert len(errors) == 8
    assert all(issubclass(error, harness.NotifyChaosError) for error in errors)
    assert issubclass(RunInterrupted, KeyboardInterrupt)


def test_the_journal_layer_loads_without_the_run_machinery() -> None:
    # The mock process imports `mocks` first, which imports harness.journal: that must neither
    # pull in the run nor trip over a half-loaded `mocks`.
    code = ("import sys, mocks.handsets, mocks.server, harness.journal\n"
            "print(sorted(m for m in ('harness.run', 'harness.rehearsal', 'harness.cli')"
            " if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_score_rescores_a_run_folder_or_its_journal_and_writes_nothing(tmp_path: Path) -> None:
    made = journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), sent("AAAAAAAA", 2))
    run_dir = run_folder(tmp_path / "run", made)
    card = score(run_dir)
    assert card == score_journal(made)
    assert score(str(run_dir / "journal")) == card
    assert sorted(path.name for path in run_dir.rglob("*")) == ["harness.jsonl", "journal"]
    with pytest.raises(JournalError, match="no such run folder"):
        score(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(JournalError, match=r"no run\.started"):
        score(tmp_path / "empty")


def scored(*events: Event, run: Scenario = SCENARIO, status: str = "completed") -> Scorecard:
    return score_journal(journal(*events, status=status, run=run))


def test_write_reports_gives_the_result_with_the_exit_code_of_its_verdict(
        tmp_path: Path) -> None:
    demo = scenario(text=BASE + "demonstrates: {fails: [duplicates == 0], passed_by: ref}\n")
    cards: dict[Verdict, Scorecard] = {
        "passed": scored(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1)),
        "failed": scored(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), sent("AAAAAAAA", 2)),
        "failed_as_expected": scored(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
                                     sent("AAAAAAAA", 2), run=demo),
        "inconclusive": scored(owed("AAAAAAAA", 10), sent("AAAAAAAA", 11),
                               *step(0, "vendor.outage", "vendors.sms", 30, 60),
                               FaultTouched(t=T0 + 35, mock="sms", switch="outage")),
        "not_judged": scored(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), status="interrupted"),
    }
    codes = {"passed": 0, "failed": 1, "failed_as_expected": 0, "inconclusive": 3,
             "not_judged": 1}
    for verdict, card in cards.items():
        assert card.verdict == verdict
        result = write_reports(tmp_path / verdict, card)
        assert result == RunResult(run_dir=tmp_path / verdict, scorecard=card,
                                   scorecard_json=tmp_path / verdict / "scorecard.json",
                                   report_html=tmp_path / verdict / "report.html",
                                   junit_xml=tmp_path / verdict / "junit.xml")
        assert (result.exit_code, result.passed) == (codes[verdict], codes[verdict] == 0)
        assert Scorecard.model_validate_json(result.scorecard_json.read_text()) == card
        assert result.report_html.stat().st_size and result.junit_xml.stat().st_size
    assert ExitCode.of(cards["inconclusive"]) is ExitCode.INCONCLUSIVE
    with pytest.raises(AttributeError):
        result.run_dir = tmp_path  # type: ignore[misc]


def test_overrides_as_a_mapping_are_used_as_they_are() -> None:
    given = {"about": "[not, a, list]", "target.env.DEFECT": "yes", "timeline": []}
    loaded = load_scenario(DEMO, given)
    assert loaded.about == "[not, a, list]"
    assert loaded.target.env["DEFECT"] == "yes" and loaded.timeline == []
    assert given == {"about": "[not, a, list]", "target.env.DEFECT": "yes", "timeline": []}
    # The same as `key=value` strings are read as YAML: a list is no text, `yes` no string.
    with pytest.raises(ScenarioError, match="about"):
        load_scenario(DEMO, ["about=[not, a, list]"])
    with pytest.raises(ScenarioError, match=r"override 'duration\.x=1': duration is not a"):
        load_scenario(DEMO, {"duration.x": 1})


def started_scenario(out: Path) -> Scenario:
    [run_dir] = out.iterdir()
    started = read_journal(run_dir / "journal").first(RunStarted)
    assert started is not None
    return started.scenario


def test_rehearse_applies_overrides_to_a_file_or_a_loaded_scenario(tmp_path: Path) -> None:
    # A Toxiproxy nobody serves ends each run early, once the scenario is final and journaled.
    nobody = "http://127.0.0.1:9"
    with pytest.raises(NotifyChaosError, match="nothing listens"):
        rehearse(DEMO, out=tmp_path / "file", overrides=["duration=60s"], toxiproxy_url=nobody)
    assert started_scenario(tmp_path / "file").duration == 60.0
    loaded = load_scenario(DEMO)
    with pytest.raises(NotifyChaosError, match="nothing listens"):
        rehearse(loaded, out=tmp_path / "model", overrides={"duration": "75s", "seed": 7},
                 toxiproxy_url=nobody)
    again = started_scenario(tmp_path / "model")
    assert (again.duration, again.seed) == (75.0, 7)
    assert again.model_copy(update={"duration": 90.0, "seed": 42}) == loaded
    with pytest.raises(ScenarioError, match=r"<scenario primary-vendor-outage>.*duration"):
        rehearse(loaded, out=tmp_path / "bad", overrides={"duration": "soon"})
    with pytest.raises(ScenarioError, match="cannot read"):
        rehearse(tmp_path / "missing.yaml", out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_a_run_that_cannot_start_raises_and_journals_why(tmp_path: Path) -> None:
    heard: list[str] = []
    with pytest.raises(NotifyChaosError, match="nothing listens") as failed:
        rehearse(DEMO, out=tmp_path, toxiproxy_url="http://127.0.0.1:9", progress=heard.append)
    [run_dir] = tmp_path.iterdir()
    assert heard[0] == f"run folder: {run_dir}"
    [ended] = read_journal(run_dir / "journal").of(RunEnded)
    assert (ended.status, ended.reason) == ("failed", str(failed.value))


@pytest.mark.e2e
def test_rehearse_runs_scores_and_reports_a_scenario(tmp_path: Path) -> None:
    heard: list[str] = []
    result = rehearse(DEMO, out=tmp_path / "runs", overrides=SHORT, progress=heard.append)
    assert result.run_dir.parent == (tmp_path / "runs").resolve()
    assert heard[0] == f"run folder: {result.run_dir}" and heard[-1] == "tearing down"
    card = result.scorecard
    assert (card.status, card.verdict, card.passed) == ("completed", "passed", True)
    assert (result.exit_code, result.passed) == (0, True)
    assert card.owed > 0 and [gate.expr for gate in card.gates] == SHORT["gates"]
    assert score(result.run_dir) == card
    assert Scorecard.model_validate_json(result.scorecard_json.read_text()) == card
    assert result.report_html.is_file() and result.junit_xml.is_file()


@pytest.mark.e2e
def test_ctrl_c_in_rehearse_stops_everything_and_reports_the_interrupted_run(
        tmp_path: Path) -> None:
    def interrupt_once_the_target_is_ready(message: str) -> None:
        if message.startswith("target ready at "):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        rehearse(DEMO, out=tmp_path, overrides=SHORT, progress=interrupt_once_the_target_is_ready)
    assert isinstance(caught.value, RunInterrupted)
    result = caught.value.result
    assert (result.scorecard.status, result.scorecard.verdict) == ("interrupted", "not_judged")
    assert result.exit_code == ExitCode.FAILED
    assert Scorecard.model_validate_json(result.scorecard_json.read_text()) == result.scorecard
    started = [c.pid for c in read_journal(result.run_dir / "journal").of(ComponentReady)
               if c.pid is not None]
    assert len(started) == 3  # toxiproxy, mocks, target
    assert not [pid for pid in started if pid_alive(pid)]
