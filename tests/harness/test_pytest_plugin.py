"""The pytest plugin, tested with pytester: a test that rehearses gets the `resilience` marker,
its runs go under its tmp_path (or --notifychaos-out), and when it fails its report shows each
run's failing gates with their measured figures and the path of the HTML report.

The fast tests stand a hand-scored run in for `harness.rehearse`; the last one rehearses a real
scenario with a defective notifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.continuity import score
from tests.harness.journals import journal, owed, sent

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

# Locust's pytest plugin would monkeypatch this very process with gevent.
NO_LOCUST = ("-p", "no:locust")

# `harness.rehearse` replaced by a run scored from a hand-made journal: one reminder of three
# arrives, so the base scenario's `continuity >= 0.5` gate fails.
FAKE_RUN = """
import json
import json
from pathlib import Path

import pytest

from harness import Scorecard, rehearsal

CALLS = []


@pytest.fixture(autouse=True)
def fake_run(monkeypatch):
    def run(scenario, *, out, overrides, **options):
        CALLS.append({"scenario": str(scenario), "out": str(out), "overrides": overrides,
                      "options": sorted(options)})
        card = Scorecard.model_validate_json(Path("scorecard.json").read_text())
        return rehearsal.write_reports(Path(out) / "run-1", card)
    monkeypatch.setattr(rehearsal, "rehearse", run)
    yield
    Path("calls.json").write_text(json.dumps(CALLS))
"""


@pytest.fixture
def fake(pytester: pytest.Pytester) -> pytest.Pytester:
    card = score(journal(owed("AAAAAAAA", 10), sent("AAAAAAAA", 10),
                         owed("BBBBBBBB", 20), owed("CCCCCCCC", 30)))
    assert [gate.expr for gate in card.gates if not gate.passed] == ["continuity >= 0.5"]
    (pytester.path / "scorecard.json").write_text(card.model_dump_json())
    pytester.makeconftest(FAKE_RUN)
    return pytester


def test_a_failing_gate_shows_with_its_figure_and_the_report_path(fake: pytest.Pytester) -> None:
    fake.makepyfile(test_outage="""
        def test_failover(rehearse, tmp_path):
            result = rehearse("scenarios/x.yaml", overrides={"duration": "30s"})
            assert result.run_dir.parent == tmp_path
            assert result.scorecard.continuity >= 0.99
    """)
    outcome = fake.runpytest(*NO_LOCUST)
    outcome.assert_outcomes(failed=1)
    outcome.stdout.fnmatch_lines([
        "*- notifychaos -*",
        "hand-made: failed (exit 1), continuity 0.3333 of 3 owed",
        "  failing gates:",
        "    continuity >= 0.5: measured 0.333333 (2 witnesses, e.g. *)",
        "  report: */run-1/report.html",
    ])
    [report] = [line.split("report: ", 1)[1] for line in outcome.outlines if "report: " in line]
    assert Path(report).is_file()


def test_a_passing_test_reports_nothing_and_the_overrides_reach_the_run(
        fake: pytest.Pytester) -> None:
    fake.makepyfile(test_outage="""
        def test_weaker(rehearse):
            assert rehearse("x.yaml", overrides=["duration=30s"]).scorecard.owed == 3
    """)
    outcome = fake.runpytest(*NO_LOCUST, "--notifychaos-out", "kept")
    outcome.assert_outcomes(passed=1)
    assert "- notifychaos -" not in outcome.stdout.str()
    [call] = json.loads((fake.path / "calls.json").read_text())
    assert call["out"] == "kept" and call["overrides"] == ["duration=30s"]
    assert call["options"] == ["progress", "toxiproxy_binary", "toxiproxy_url"]
    assert (fake.path / "kept" / "run-1" / "report.html").is_file()


def test_tests_that_rehearse_are_resilience_tests(fake: pytest.Pytester) -> None:
    fake.makepyfile(test_mixed="""
        def test_quick():
            pass

        def test_slow(rehearse):
            rehearse("x.yaml")
    """)
    outcome = fake.runpytest(*NO_LOCUST, "-m", "not resilience", "-v")
    outcome.assert_outcomes(passed=1, deselected=1)
    outcome.stdout.fnmatch_lines(["*test_quick PASSED*"])
    selected = fake.runpytest(*NO_LOCUST, "-m", "resilience", "-v")
    selected.assert_outcomes(passed=1, deselected=1)
    selected.stdout.fnmatch_lines(["*test_slow PASSED*"])


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    outcome = pytester.runpytest(*NO_LOCUST, "--markers")
    outcome.stdout.fnmatch_lines(["@pytest.mark.resilience: *"])


@pytest.mark.e2e
def test_a_real_run_with_a_defect_shows_its_failing_gate(pytester: pytest.Pytester) -> None:
    # 12 s of load (~48 reminders) are enough: the ledger changes the borrower's number before
    # remind_at for one reminder in five, outage or not, and the defect sends to the old number.
    scenario = ROOT / "scenarios" / "phone-changes-during-outage.yaml"
    pytester.makepyfile(test_real=f"""
        def test_phone_changes(rehearse):
            result = rehearse({str(scenario)!r}, overrides={{
                "target.cwd": {str(ROOT)!r}, "target.env.DEFECT": "cached-phones",
                "duration": "12s",
                "timeline": [{{"at": "3s", "for": "6s", "fault": "proxy.down",
                               "link": "vendors.twilio"}}]}})
            assert result.passed
    """)
    outcome = pytester.runpytest_subprocess(*NO_LOCUST, timeout=240)
    outcome.assert_outcomes(failed=1)
    outcome.stdout.fnmatch_lines([
        "*- notifychaos -*",
        "phone-changes-during-outage: failed (exit 1), continuity * owed",
        "  failing gates:",
        "    wrong_recipient == 0: measured * (* witnesses, e.g. *)",
        "  report: *report.html",
    ])
