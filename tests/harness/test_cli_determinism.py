"""`notifychaos run --check-determinism`: what it prints and its exit code (0 same, 1 differs,
2 could not run), over a stand-in for the two runs (the e2e test makes real ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness import cli
from harness.continuity import score
from harness.determinism import Comparison, DeterminismCheck, Difference, Fate
from harness.errors import StartupError
from harness.rehearsal import RunResult
from tests.harness.journals import journal, owed, scenario, sent

FATE = Fate("rem-AAAAAAAA", "on_time", ("sms delivered",), (), (1.0,), (0.0,))
MISSED = Fate("rem-AAAAAAAA", "missed", ("sms dropped (drop)",), (), (1.0,), (0.0,))


def _result(tmp_path: Path, name: str) -> RunResult:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), run=scenario("seed=5")))
    run_dir = tmp_path / name
    return RunResult(run_dir, card, run_dir / "scorecard.json", run_dir / "report.html",
                     run_dir / "junit.xml")


def _invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, outcome: Any,
            *files: Path) -> tuple[int, str]:
    def fake(*args: object, **kwargs: object) -> DeterminismCheck:
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, Comparison)
        return DeterminismCheck((_result(tmp_path, "one"), _result(tmp_path, "two")), outcome)

    monkeypatch.setattr(cli, "check_determinism", fake)
    # The command turns signals into Ctrl-C for the run; pytest's own process keeps its own.
    monkeypatch.setattr(cli, "_answer_signals", lambda: None)
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text("name: s\n", encoding="utf-8")
    given = files or (scenario_file,)
    result = CliRunner().invoke(cli.main, ["run", "--check-determinism", *map(str, given),
                                           "--out", str(tmp_path)])
    return result.exit_code, result.output


def test_same_fates_exit_0_and_say_how_many(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    code, output = _invoke(monkeypatch, tmp_path, Comparison(40, (), (), 0, ()))
    assert code == 0
    assert "deterministic: 40 reminders, same fates" in output
    assert "seed 5, toxiproxy 2.12.0" in output
    assert f"run 1: {tmp_path / 'one'} (" in output and f"run 2: {tmp_path / 'two'} (" in output


def test_a_differing_fate_exits_1_naming_the_first(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    differs = Comparison(40, (Difference("rem-AAAAAAAA", FATE, MISSED),), (), 0, ())
    code, output = _invoke(monkeypatch, tmp_path, differs)
    assert code == 1
    assert ("NOT deterministic: 1 of 40 reminders differ; the first: rem-AAAAAAAA: run 1 "
            "on_time: sms delivered; run 2 missed: sms dropped (drop)") in output


def test_a_run_that_cannot_be_made_exits_2(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    code, output = _invoke(monkeypatch, tmp_path, StartupError("mocks", "no manifest within 15s"))
    assert code == 2 and "no manifest within 15s" in output


def test_it_takes_one_scenario(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files = [tmp_path / "a.yaml", tmp_path / "b.yaml"]
    for path in files:
        path.write_text("name: x\n", encoding="utf-8")
    code, output = _invoke(monkeypatch, tmp_path, Comparison(0, (), (), 0, ()), *files)
    assert code == 2 and "--check-determinism takes one scenario file" in output
