"""The maintenance-window figure: what the borrowers owed during a `process.stop` got afterwards."""

from __future__ import annotations

import io

from rich.console import Console

from harness.continuity import score
from harness.gates import parse_gate
from harness.html import html_report
from harness.report import summary
from tests.harness.journals import journal, owed, scenario, sent, step

PAIR = scenario(
    "duration=120s", "target.instances=[active, standby]",
    "timeline=[{at: 30s, for: 20s, fault: process.stop, link: target.active},"
    " {at: 40s, for: 20s, fault: process.stop, link: target.standby},"
    " {at: 80s, for: 5s, fault: process.kill, link: target.active}]",
    "gates=[delivered_after_maintenance >= 0.9]")


def test_it_is_the_share_of_reminders_owed_in_a_window_delivered_at_all() -> None:
    card = score(journal(
        step(0, "process.stop", "target.active", 30, 50),
        step(1, "process.stop", "target.standby", 40, 60),
        step(2, "process.kill", "target.active", 80, 85),
        owed("AAAAAAAA", 35), sent("AAAAAAAA", 36),   # on time, in the first window
        owed("BBBBBBBB", 45), sent("BBBBBBBB", 58),   # late, in both windows: counted once
        owed("CCCCCCCC", 55),                         # missed, in the second window
        owed("DDDDDDDD", 20), sent("DDDDDDDD", 21),   # delivered before any window
        owed("EEEEEEEE", 80),                         # missed, but in the kill, not a window
        run=PAIR, end=120))
    assert [row.exposed for row in card.faults] == [2, 2, 1]
    assert card.faults[1].outcomes_exposed["late"] == 1
    assert card.delivered_after_maintenance == round(2 / 3, 6)
    assert card.metric("delivered_after_maintenance") == round(2 / 3, 6)
    [gate] = card.gates
    assert not gate.passed


def test_without_a_window_that_exposed_a_reminder_it_is_none_and_its_gate_fails() -> None:
    card = score(journal(
        step(2, "process.kill", "target.active", 80, 85),
        owed("AAAAAAAA", 80), sent("AAAAAAAA", 81),
        run=PAIR, end=120))
    assert card.delivered_after_maintenance is None
    assert not parse_gate("delivered_after_maintenance >= 0").holds(card.metric(
        "delivered_after_maintenance"))
    [gate] = card.gates
    assert (gate.value, gate.passed) == (None, False)


def test_a_window_that_lasts_to_the_run_end_exposes_what_was_owed_until_then() -> None:
    card = score(journal(
        step(0, "process.stop", "target.active", 30, None),
        owed("AAAAAAAA", 90), sent("AAAAAAAA", 92),
        owed("BBBBBBBB", 95),
        run=PAIR, end=120))
    assert card.delivered_after_maintenance == 0.5


def test_the_reports_name_the_instance_each_step_acted_on() -> None:
    card = score(journal(
        step(0, "process.stop", "target.active", 30, 50),
        step(1, "process.kill", "target[1]", 80, 85),
        owed("AAAAAAAA", 35), sent("AAAAAAAA", 36),
        run=scenario("duration=120s", "target.instances=[active, standby]",
                     "timeline=[{at: 30s, for: 20s, fault: process.stop, link: target.active},"
                     " {at: 80s, for: 5s, fault: process.kill, link: 'target[1]'}]"),
        end=120))
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(summary(card))
    text = console.export_text()
    assert "target.active" in text and "target[1]" in text
    html = html_report(card)
    assert "step 0 process.stop target.active" in html
    assert "step 1 process.kill target[1]" in html
