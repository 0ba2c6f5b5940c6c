"""The run folder's reports: scorecard.json, report.html and junit.xml agree with the scorecard."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.continuity import score
from harness.report import write_reports
from tests.harness.journals import journal, owed, sent


def test_the_three_reports_tell_the_same_story(tmp_path: Path) -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), sent("AAAAAAAA", 2),
                         owed("BBBBBBBB", 0)))
    scorecard = write_reports(tmp_path, card)
    assert json.loads(scorecard.read_text())["duplicates"] == 1

    suite = ET.parse(tmp_path / "junit.xml").getroot()
    cases = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    assert list(cases) == ["continuity >= 0.5", "duplicates == 0", "p95_latency <= 5s"]
    assert cases["continuity >= 0.5"] is None and cases["p95_latency <= 5s"] is None
    failure = cases["duplicates == 0"]
    assert failure is not None and failure.get("message") == "duplicates == 0: measured 1"
    assert suite.get("failures") == "1"

    page = (tmp_path / "report.html").read_text()
    assert "FAILED" in page and "Continuity 50.00% of 2 owed reminders" in page
    assert "<code>duplicates == 0</code>" in page


def test_an_interrupted_run_fails_every_gate_in_junit(tmp_path: Path) -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), status="interrupted"))
    write_reports(tmp_path, card)
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    failures = [case.find("failure") for case in suite.iter("testcase")]
    assert all(failure is not None for failure in failures)
    assert failures[0] is not None
    assert failures[0].get("message") == "run interrupted; measured 1"
    assert "NOT JUDGED: the run interrupted" in (tmp_path / "report.html").read_text()
