"""Scoring an upgrade from its journal: the cut-over gap, failed upgrades, the verdict they give
and the reason every report shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from harness import write_reports
from harness.continuity import score
from harness.html import html_report
from harness.journal import Event, FaultMeasured, UpgradeFinished, UpgradeOutcome
from harness.junit import junit_xml
from harness.pytest_plugin import describe
from harness.report import summary
from harness.scenario import Scenario
from harness.scorecard import FIGURES, Scorecard
from tests.harness.journals import T0, journal, owed, scenario, sent, step

UPGRADING = ("upgrade={target: {command: [notifier, '2'], health: 'tcp://127.0.0.1:1'}, "
             "migrate: {command: [migrate]}}",
             "timeline=[{at: 20s, fault: upgrade, link: target}]")
FAILED = "the migration exited with code 3 (see logs/migration.log); rolled back to version A"


def upgrade(outcome: UpgradeOutcome = "upgraded", gap: float | None = 2.7,
            exit_code: int | None = 0, reason: str = "version B is ready") -> list[Event]:
    """Step 0, an upgrade whose stop began at 20 s and that was over at 20 s + 2.7 s."""
    over = 20.0 + 2.7
    events: list[Event] = [UpgradeFinished(
        t=T0 + over, step=0, stop_began=T0 + 20.0, stop_ended=T0 + 20.2,
        migration_exit=exit_code, migration_seconds=0.8,
        ready_at=None if gap is None else T0 + 20.0 + gap, cut_over_gap=gap, outcome=outcome,
        reason=reason, log="logs/migration.log")]
    events += step(0, "upgrade", "target", over, over)
    events.append(FaultMeasured(t=T0 + over, step=0, probes=1, affected=1,
                                detail="SIGTERM to pid 41; migration exit 0 in 0.8s"))
    return events


def run(*events: Event | list[Event], run: Scenario | None = None) -> Scorecard:
    """A run in which one reminder waits through the cut-over and arrives on time after it."""
    return score(journal(owed("UPGRADE1", 19.0), sent("UPGRADE1", 23.0), *events,
                         run=run or scenario(*UPGRADING)))


def text_of(card: Scorecard) -> str:
    console = Console(width=200, record=True)
    console.print(summary(card))
    return console.export_text()


def test_an_upgrade_gives_its_row_its_gap_and_its_window_on_the_timeline() -> None:
    card = run(upgrade())
    [row] = card.upgrades
    assert (row.step, row.at, row.outcome, row.migration_exit, row.migration_seconds) == (
        0, 20.0, "upgraded", 0, 0.8)
    assert (card.cut_over_gap, card.failed_upgrades) == (2.7, 0)
    assert FIGURES["cut_over_gap"].value(card) == 2.7
    assert FIGURES["failed_upgrades"].value(card) == 0.0
    assert (FIGURES["cut_over_gap"].better, FIGURES["cut_over_gap"].unit) == ("lower", "seconds")
    assert (FIGURES["failed_upgrades"].better, FIGURES["failed_upgrades"].unit) == (
        "lower", "count")
    # The step's row spans the cut-over: from version A's stop to the end of the step.
    [fault] = card.faults
    assert (fault.applied_at, fault.reverted_at, fault.touched, fault.exposed) == (
        20.0, 22.7, 1, 1)
    assert card.verdict == "passed"
    assert "step 0 upgrade at 20.0s: upgraded; migration exit 0 in 0.8s; cut-over gap 2.7s" \
        in text_of(card)
    assert "cut_over_gap" in html_report(card) and "2.70 s" in html_report(card)


def test_a_failed_upgrade_fails_the_run_without_a_gate_and_every_report_says_why(
        tmp_path: Path) -> None:
    card = run(upgrade("migration_failed", gap=None, exit_code=3, reason=FAILED))
    assert all(gate.passed for gate in card.gates)
    assert (card.failed_upgrades, card.cut_over_gap) == (1, None)
    assert card.verdict == "failed" and not card.passed
    why = f"step 0 upgrade at 20.0s: migration failed: {FAILED}"
    assert f"FAILED {why}" in text_of(card)
    page = html_report(card)
    assert "FAILED" in page and why in page
    suite = ET.fromstring(junit_xml(card))
    [case] = [c for c in suite.iter("testcase") if c.get("name") == "step 0 upgrade"]
    assert case.get("classname") == "notifychaos.hand-made.upgrade"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == why
    assert suite.get("failures") == "1"
    told = describe(write_reports(tmp_path, card))
    assert f"upgrade failed: {why}" in told and "all 0 gates" not in told


def test_a_gate_on_failed_upgrades_decides_instead_and_a_demonstration_may_expect_it() -> None:
    failed = upgrade("not_ready", gap=None, exit_code=0,
                     reason="version B did not become ready: ...; rolled back to version A")
    allowed = run(failed, run=scenario(*UPGRADING, "gates=[failed_upgrades <= 1]"))
    assert allowed.verdict == "passed"
    demonstration = scenario(*UPGRADING, "gates=[failed_upgrades == 0]",
                             "demonstrates={fails: [failed_upgrades == 0], passed_by: good}")
    assert run(failed, run=demonstration).verdict == "failed_as_expected"
    other = scenario(*UPGRADING, "gates=[continuity >= 0.5, duplicates == 1]",
                     "demonstrates={fails: [duplicates == 1], passed_by: good}")
    assert run(failed, run=other).verdict == "failed"  # its upgrade failing was not expected


def test_a_gate_on_the_cut_over_gap_fails_when_version_b_never_got_ready() -> None:
    gated = scenario(*UPGRADING, "gates=[cut_over_gap <= 10s]")
    assert run(upgrade(), run=gated).verdict == "passed"
    never = run(upgrade("not_ready", gap=None, reason="version B did not become ready"),
                run=gated)
    assert never.cut_over_gap is None and never.verdict == "failed"
    assert [gate.passed for gate in never.gates] == [False]


def test_a_run_without_an_upgrade_has_no_gap_and_an_older_scorecard_none() -> None:
    # A baseline (the rehearsal without its upgrade step) passes its own cut_over_gap gate.
    card = score(journal(owed("UPGRADE1", 19.0), sent("UPGRADE1", 23.0),
                         run=scenario(*UPGRADING[:1], "gates=[cut_over_gap <= 10s]")))
    assert (card.upgrades, card.cut_over_gap, card.failed_upgrades) == ([], 0.0, 0)
    assert card.verdict == "passed"
    # A planned upgrade that never ran (the run ended first) fails: it rehearsed nothing.
    never = run()
    [row] = never.upgrades
    assert (row.step, row.at, row.outcome, never.cut_over_gap) == (0, 20.0, "never_ran", None)
    assert (never.failed_upgrades, never.verdict) == (1, "failed")
    assert "step 0 upgrade at 20.0s: never ran: the run ended before the step was carried " \
        "out" in text_of(never)
    old = Path(__file__).parent / "journal_v1" / "scorecard.json"
    loaded = Scorecard.model_validate_json(old.read_text(encoding="utf-8"))
    assert (loaded.upgrades, loaded.cut_over_gap, loaded.failed_upgrades) == ([], None, 0)


def test_an_upgrade_exposes_every_reminder_the_notifier_held_not_only_those_due_in_its_gap(
        ) -> None:
    # Held at the cut-over: in the ledger at 17 s, due at 25 s (after the 2.7 s gap), sent then.
    held = (owed("HELDREF1", 25.0, scheduled=17.0), sent("HELDREF1", 25.1))
    # Not held: delivered before the cut-over began, and scheduled only after it was over.
    before = (owed("DONEREF1", 10.0, scheduled=5.0), sent("DONEREF1", 10.1))
    after = (owed("LATERRF1", 30.0, scheduled=24.0), sent("LATERRF1", 30.1))
    card = score(journal(*held, *before, *after, *upgrade(), run=scenario(*UPGRADING)))
    [fault] = card.faults
    assert (fault.exposed, fault.outcomes_exposed["on_time"]) == (1, 1)
