"""A suite against a baseline, on real processes: a planted regression fails it, and the same
suite passes the baseline without it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.continuity import score
from harness.rehearsal import write_reports
from harness.scorecard import Latency
from tests.e2e.conftest import ROOT, Finished, finish, start
from tests.harness.journals import journal, owed, sent

pytestmark = pytest.mark.e2e

SUITE = [ROOT / "scenarios" / "phone-changes-during-outage.yaml",
         ROOT / "scenarios" / "primary-vendor-outage.yaml"]
# Both scenarios shortened alike (overrides apply to every scenario of a suite): Twilio down
# for 6 s of 14 s, enough for the reference to fail over and alert (it alerts after 3 failures).
SHORT = ("--set", "duration=14s", "--set",
         "timeline=[{at: 4s, for: 6s, fault: proxy.down, link: vendors.twilio}]")
NO_LATENCY = Latency(p50=None, p95=None, p99=None)
# Reminders cannot reach the inbox before the bank's remind_at, so no run can match this.
IMPOSSIBLE = Latency(p50=-1.0, p95=-1.0, p99=-1.0)


def baseline(folder: Path, planted: bool) -> Path:
    """A baseline of both scenarios no run can fall behind (continuity 0, no latencies), but
    for phone-changes-during-outage when `planted`: latencies better than possible."""
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1)))
    for path in SUITE:
        latency = IMPOSSIBLE if planted and path.stem.startswith("phone") else NO_LATENCY
        write_reports(folder / path.stem, card.model_copy(update={
            "scenario": path.stem, "continuity": 0.0, "latency": latency}))
    return folder


def suite_folder(out: Path) -> Path:
    [folder] = out.glob("suite-*")
    return folder


def test_a_planted_regression_against_the_baseline_fails_the_suite_and_passes_without_it(
        tmp_path: Path) -> None:
    jobs = {planted: (tmp_path / f"out-{planted}", baseline(tmp_path / f"base-{planted}", planted))
            for planted in (True, False)}

    def one(planted: bool) -> Finished:
        out, base = jobs[planted]
        return finish(start("run", *SUITE, "--out", out, "--baseline", base, *SHORT), out,
                      timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        regressed, clean = pool.map(one, (True, False))

    folder = suite_folder(jobs[True][0])
    summary = json.loads((folder / "suite.json").read_text())
    phone, outage = summary["scenarios"]
    assert regressed.code == 1, regressed.stdout + regressed.stderr
    assert [r.split(":")[0] for r in phone["regressions"]] == [
        "p50_latency", "p95_latency", "p99_latency"]
    assert outage["regressions"] == []
    assert "baseline REGRESSED: p95_latency: baseline -1" in regressed.stdout
    root = ET.parse(folder / "junit.xml").getroot()
    case = root.find("testsuite[@name='notifychaos.phone-changes-during-outage.baseline']"
                     "/testcase[@name='p95_latency']/failure")
    assert case is not None and "baseline -1" in (case.get("message") or "")
    assert len(root.findall("testsuite")) == 4  # two runs, two baseline comparisons
    index = (folder / "index.html").read_text()
    assert index.count("report.html") == 2 and "REGRESSED" in index

    clean_summary = json.loads((suite_folder(jobs[False][0]) / "suite.json").read_text())
    assert all(s["regressions"] == [] for s in clean_summary["scenarios"])
    verdicts = [s["verdict"] for s in clean_summary["scenarios"]]
    assert clean.code == 0 and verdicts == ["passed", "passed"], clean.stdout + clean.stderr
