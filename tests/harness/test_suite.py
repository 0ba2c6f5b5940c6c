"""Suites: repeats judged on the worst or the median, exit codes, the suite's JUnit and index."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.baseline import DEFAULT_MARGINS
from harness.continuity import score
from harness.rehearsal import ExitCode, RunResult, write_reports
from harness.scorecard import Scorecard
from harness.suite import (
    ScenarioRuns,
    SuiteResult,
    judge,
    scenario_files,
    worst_code,
    write_suite,
)
from tests.harness.journals import SCENARIO, journal, owed, sent

# The hand-made scenario's gates: continuity >= 0.5, duplicates == 0, p95_latency <= 5s.
ALL_ON_TIME = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), owed("BBBBBBBB", 0),
                            sent("BBBBBBBB", 2)))
NONE_ON_TIME = score(journal(owed("AAAAAAAA", 0), owed("BBBBBBBB", 0)))


def runs(tmp_path: Path, *cards: Scorecard) -> list[RunResult]:
    return [write_reports(tmp_path / f"run-{n}", card) for n, card in enumerate(cards)]


def test_one_run_keeps_its_own_verdict(tmp_path: Path) -> None:
    judged = judge(Path("s.yaml"), SCENARIO, runs(tmp_path, NONE_ON_TIME))
    assert (judged.verdict, judged.exit_code) == ("failed", ExitCode.FAILED)
    assert not judged.spreads


def test_repeats_gate_on_the_worst_run_by_default_or_on_the_median(tmp_path: Path) -> None:
    results = runs(tmp_path, ALL_ON_TIME, NONE_ON_TIME, ALL_ON_TIME)
    worst = judge(Path("s.yaml"), SCENARIO, results)
    assert (worst.verdict, worst.exit_code) == ("failed", ExitCode.FAILED)
    gate = worst.gates[0]
    assert (gate.expr, gate.value, gate.passed) == ("continuity >= 0.5", 0.0, False)
    assert gate.witnesses == ("rem-AAAAAAAA", "rem-BBBBBBBB")
    median = judge(Path("s.yaml"), SCENARIO, results, gate_on="median")
    assert (median.verdict, median.exit_code) == ("passed", ExitCode.PASSED)
    assert median.gates[0].value == 1.0
    spread = {s.figure: s for s in worst.spreads}["continuity"]
    assert (spread.low, spread.median, spread.high) == (0.0, 1.0, 1.0)


def test_a_regression_against_the_baseline_fails_a_passing_scenario(tmp_path: Path) -> None:
    results = runs(tmp_path, ALL_ON_TIME)
    claimed = ALL_ON_TIME.model_copy(update={"continuity": 1.0})
    same = judge(Path("s.yaml"), SCENARIO, results, baseline=("base", claimed),
                 margins=DEFAULT_MARGINS)
    assert same.exit_code == ExitCode.PASSED and same.comparison is not None
    better_base = ALL_ON_TIME.model_copy(update={
        "latency": ALL_ON_TIME.latency.model_copy(update={"p95": 0.1})})
    regressed = judge(Path("s.yaml"), SCENARIO, results, baseline=("base", better_base),
                      margins=DEFAULT_MARGINS)
    assert regressed.verdict == "passed" and regressed.exit_code == ExitCode.FAILED
    assert regressed.comparison is not None
    assert "p95_latency" in {r.figure for r in regressed.comparison.regressions}


def test_a_suite_exits_with_its_worst_code() -> None:
    assert worst_code([ExitCode.PASSED, ExitCode.INCONCLUSIVE]) == ExitCode.INCONCLUSIVE
    assert worst_code([ExitCode.INCONCLUSIVE, ExitCode.FAILED]) == ExitCode.FAILED
    assert worst_code([ExitCode.FAILED, ExitCode.NOT_RUN, ExitCode.PASSED]) == ExitCode.NOT_RUN
    assert worst_code([]) == ExitCode.PASSED
    assert SuiteResult((), interrupted=True).exit_code == ExitCode.NOT_RUN


def test_a_folder_stands_for_its_yaml_files_sorted(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yaml", "notes.txt"):
        (tmp_path / name).write_text("")
    assert scenario_files([tmp_path, Path("x.yaml")]) == [
        tmp_path / "a.yaml", tmp_path / "b.yaml", Path("x.yaml")]


def test_the_suite_junit_has_a_testsuite_per_run_repeats_baseline_and_errors(
        tmp_path: Path) -> None:
    repeated = judge(Path("a.yaml"), SCENARIO, runs(tmp_path / "a", ALL_ON_TIME, NONE_ON_TIME))
    better_base = ALL_ON_TIME.model_copy(update={"continuity": 1.0})
    compared = judge(Path("b.yaml"), SCENARIO, runs(tmp_path / "b", NONE_ON_TIME),
                     baseline=("old/scorecard.json", better_base), margins=DEFAULT_MARGINS)
    broken = ScenarioRuns(Path("c.yaml"), "c", error="target <b>never</b> became ready")
    suite = write_suite(tmp_path / "out", SuiteResult((repeated, compared, broken)))
    assert suite.folder is not None and suite.folder.name.startswith("suite-")
    assert suite.exit_code == ExitCode.NOT_RUN

    root = ET.parse(suite.files["junit"]).getroot()
    assert root.tag == "testsuites"
    names = [s.get("name") for s in root.findall("testsuite")]
    assert names == ["notifychaos.hand-made", "notifychaos.hand-made",
                     "notifychaos.hand-made.repeats", "notifychaos.hand-made",
                     "notifychaos.hand-made.baseline", "notifychaos.c.run"]
    assert all(s.get("time") is not None for s in root.iter("testsuite"))
    assert all(c.get("time") is not None for c in root.iter("testcase"))
    failed_run = root.findall("testsuite")[1]
    failure = failed_run.find("testcase/failure")
    assert failure is not None and failure.get("message") == "continuity >= 0.5: measured 0"
    assert failure.text is not None and "continuity 0 of 2 owed" in failure.text
    assert "witnesses: rem-AAAAAAAA" in failure.text
    repeats = root.findall("testsuite")[2]
    first = repeats.find("testcase/failure")
    assert first is not None and first.get("message") == (
        "continuity >= 0.5: worst of 2 runs measured 0")
    baseline = root.findall("testsuite")[4]
    cases = {c.get("name"): c.find("failure") for c in baseline.iter("testcase")}
    assert list(cases) == [m.figure for m in DEFAULT_MARGINS]
    regression = cases["continuity"]
    assert regression is not None and regression.get("message") == (
        "regressed: continuity: baseline 1, now 0, margin 0.01 (higher is better)")
    error = root.find("testsuite[@name='notifychaos.c.run']/testcase/error")
    assert error is not None and error.text == "target <b>never</b> became ready"
    total = sum(int(s.get("tests", "0")) for s in root.findall("testsuite"))
    assert root.get("tests") == str(total) and root.get("errors") == "1"

    page = suite.files["index"].read_text()
    assert "target &lt;b&gt;never&lt;/b&gt; became ready" in page and "<b>never" not in page
    assert 'href="../../a/run-0/report.html"' in page and 'href="../../b/run-0/report.html"' in page
    assert "NOT RUN (exit 2)" in page and "regressed: continuity: baseline 1, now 0" in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained: nothing fetched

    summary = json.loads(suite.files["json"].read_text())
    assert summary["exit_code"] == 2
    assert [s["exit_code"] for s in summary["scenarios"]] == [1, 1, 2]
    assert summary["scorecards"][0] == "../../a/run-0/scorecard.json"
