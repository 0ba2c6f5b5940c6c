"""When the command cannot run: one line, the place, exit code 2, nothing left running."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.journal import ComponentReady, RunEnded, read_journal
from tests.e2e.conftest import ROOT, finish, pid_alive, start


def test_a_bad_scenario_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "scenarios" / "primary-vendor-outage.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("fault: proxy.down", "fault: proxy.dwon"), encoding="utf-8")
    line = text.splitlines().index("    fault: proxy.down") + 1
    # Both commands at once: each is a Python start-up, and the two cores can take both.
    started = [start("run", bad, "--out", tmp_path / "runs"), start("validate", bad)]
    for done in [finish(process, None, timeout=60) for process in started]:
        assert done.code == 2
        [message] = done.stderr.strip().splitlines()
        assert message.startswith(f"notifychaos: error: {bad}:{line}: timeline[0].fault: ")
        assert "unknown fault 'proxy.dwon'" in message
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_run_refuses_a_malformed_file_in_one_line_before_starting_anything(tmp_path: Path) -> None:
    corpus = ROOT / "tests" / "harness" / "malformed"
    paths = [corpus / f"{name}.yaml"
             for name in ("binary-png", "duplicate-vendor", "deep-nesting", "ends-after-run")]
    # All at once: each is a Python start-up that refuses before making anything.
    started = [start("run", path, "--out", tmp_path / "runs") for path in paths]
    finished = [finish(process, None, timeout=60) for process in started]
    for path, done in zip(paths, finished, strict=True):
        assert done.code == 2, done.stderr
        [message] = done.stderr.strip().splitlines()
        assert message.startswith(f"notifychaos: error: {path}:"), message
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.e2e
def test_a_target_that_never_becomes_ready_stops_the_run_cleanly(tmp_path: Path) -> None:
    scenario = tmp_path / "dead.yaml"
    text = (ROOT / "scenarios" / "primary-vendor-outage.yaml").read_text(encoding="utf-8")
    scenario.write_text(
        text.replace("command: [python, -m, examples.reminder_service]",
                     "command: [python, -c, 'print(\"no ledger today\"); import time; "
                     "time.sleep(60)']").replace("ready_timeout: 30s", "ready_timeout: 2s"),
        encoding="utf-8")
    out = tmp_path / "runs"
    done = finish(start("run", scenario, "--out", out), out, timeout=120)
    assert done.code == 2
    first, *rest = done.stderr.strip().splitlines()
    assert first.startswith("notifychaos: error: target: http://127.0.0.1:")
    assert "did not answer within 2s" in first
    assert "no ledger today" in "\n".join(rest)
    assert done.run_dir is not None
    journal = read_journal(done.run_dir / "journal")
    [ended] = journal.of(RunEnded)
    assert ended.status == "failed" and "did not answer" in ended.reason
    assert not [c.pid for c in journal.of(ComponentReady) if c.pid and pid_alive(c.pid)]
