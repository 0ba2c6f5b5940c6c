"""`notifychaos compare`: figures judged against margins in their direction, figures one run
lacks, reminders whose outcome changed or that only one run scheduled, runs that cannot be
compared, and the command's exit codes and files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import Comparison, JournalError, cli, compare
from harness.baseline import parse_margins
from harness.comparison import SHOWN_LOST, NotComparable
from harness.journal import Event, Journal, RunStarted
from harness.scenario import Scenario
from harness.scorecard import FIGURES
from tests.harness.chromium import Chromium
from tests.harness.journals import SCENARIO, journal, owed, run_folder, scenario, sent

REFS = ("AAAAAAAA", "BBBBBBBB", "CCCCCCCC", "DDDDDDDD")


def reminders(*events: Event, refs: tuple[str, ...] = REFS) -> list[Event]:
    """Reminders `refs`, each due 10 s after the last, with `events` after them."""
    return [*(owed(ref, 10.0 * i) for i, ref in enumerate(refs)), *events]


def delivered(refs: tuple[str, ...] = REFS, arrive: float = 1.0) -> list[Event]:
    """A send of each of `refs` at its remind_at, in the inbox `arrive` seconds later."""
    return [sent(ref, 10.0 * REFS.index(ref), arrive=arrive) for ref in refs]


def pair(tmp_path: Path, baseline: list[Event], rehearsal: list[Event],
         run: Scenario = SCENARIO, other: Scenario | None = None) -> tuple[Path, Path]:
    return (run_folder(tmp_path / "baseline", journal(*baseline, run=run)),
            run_folder(tmp_path / "rehearsal", journal(*rehearsal, run=other or run)))


def row(comparison: Comparison, figure: str) -> tuple[float | None, float | None, str]:
    [found] = [r for r in comparison.figures if r.figure == figure]
    return found.baseline, found.rehearsal, found.verdict


def test_a_run_against_itself_is_not_worse_and_nothing_changed(tmp_path: Path) -> None:
    same = reminders(*delivered())
    result = compare(*pair(tmp_path, same, same))
    assert (result.verdict, result.worse, result.reasons) == ("not worse", False, [])
    assert (result.compared, result.owed_in_both, result.changed) == (4, 4, [])
    assert row(result, "continuity") == (1.0, 1.0, "same")
    assert row(result, "owed") == (4.0, 4.0, "shown")
    assert row(result, "p95_latency") == (1.0, 1.0, "not judged")
    # Every registered figure is in the table, with which way it is better and its unit.
    assert [r.figure for r in result.figures] == list(FIGURES)
    assert all((r.better, r.unit) == (FIGURES[r.figure].better, FIGURES[r.figure].unit)
               for r in result.figures)


def test_a_lost_reminder_makes_the_rehearsal_worse_and_is_named(tmp_path: Path) -> None:
    baseline = reminders(*delivered())
    rehearsal = reminders(*delivered(REFS[:2]), sent(REFS[3], 30.0, arrive=15.0))
    result = compare(*pair(tmp_path, baseline, rehearsal))
    assert result.worse
    assert row(result, "continuity") == (1.0, 0.5, "worse")
    # Outcome counts are shown; continuity and the lost reminders judge them.
    assert row(result, "on_time") == (4.0, 2.0, "not judged")
    assert row(result, "missed") == (0.0, 1.0, "not judged")
    assert row(result, "late") == (0.0, 1.0, "not judged")
    changes = [(r.reminder_id, r.ref, r.borrower_id, r.baseline, r.rehearsal, r.lost)
               for r in result.changed]
    assert changes == [("rem-CCCCCCCC", "CCCCCCCC", "B1", "on_time", "missed", True),
                       ("rem-DDDDDDDD", "DDDDDDDD", "B1", "on_time", "late", False)]
    assert [r.reminder_id for r in result.lost] == ["rem-CCCCCCCC"]
    assert result.changed_borrowers == ["B1"]
    assert result.reasons[0] == "continuity 1 -> 0.5 (margin 0, higher is better)"
    assert result.reasons[-1] == "1 reminder lost: rem-CCCCCCCC (B1, on_time -> missed)"
    # Better the other way round: the figures improve, and nothing is lost.
    back = compare(tmp_path / "rehearsal", tmp_path / "baseline")
    assert not back.worse and back.lost == []
    assert row(back, "continuity") == (0.5, 1.0, "better")
    assert row(back, "missed") == (1.0, 0.0, "not judged")


def test_margins_allow_that_much_worse_in_the_figures_direction(tmp_path: Path) -> None:
    baseline = reminders(*delivered())
    # The last one late (delivered, so not lost): continuity 0.75.
    rehearsal = reminders(*delivered(REFS[:3]), sent(REFS[3], 30.0, arrive=15.0))
    folders = pair(tmp_path, baseline, rehearsal)
    # A margin on continuity is the whole tolerance for reminders not on time.
    loose = ["continuity=0.25"]
    assert not compare(*folders, loose).worse
    assert row(compare(*folders, loose), "continuity") == (1.0, 0.75, "within margin")
    assert compare(*folders, ["continuity=0.2"]).worse
    assert compare(*folders, ["continuity=25%"]).verdict == "not worse"
    # An outcome's count is judged when given a margin of its own.
    assert row(compare(*folders, [*loose, "late=0"]), "late") == (0.0, 1.0, "worse")
    # A reminder lost is worse whatever the margins: the regression a rehearsal is for.
    missed = pair(tmp_path / "missed", baseline, reminders(*delivered(REFS[:3])))
    assert compare(*missed, ["continuity=0.5"]).reasons == [
        "1 reminder lost: rem-DDDDDDDD (B1, on_time -> missed)"]
    # Lower is better for duplicates: more of them is worse, by more than the margin.
    extra = reminders(*delivered(), sent(REFS[0], 2.0))
    dup = pair(tmp_path / "dup", baseline, extra)
    assert row(compare(*dup), "duplicates") == (0.0, 1.0, "worse")
    assert not compare(*dup, ["duplicates=1"]).worse


def test_seconds_are_judged_only_with_a_margin(tmp_path: Path) -> None:
    folders = pair(tmp_path, reminders(*delivered(arrive=1.0)),
                   reminders(*delivered(arrive=4.0)))
    assert not compare(*folders).worse
    assert row(compare(*folders), "p95_latency") == (1.0, 4.0, "not judged")
    assert compare(*folders, ["p95_latency=3s"]).verdict == "not worse"
    tight = compare(*folders, ["p95_latency=2s"])
    assert row(tight, "p95_latency") == (1.0, 4.0, "worse")
    assert tight.reasons == ["p95_latency 1 -> 4 (margin 2s, lower is better)"]
    assert compare(*folders, ["p95_latency=300%"]).verdict == "not worse"


def test_a_figure_one_run_lacks_is_said_and_lost_is_worse(tmp_path: Path) -> None:
    # Nothing arrives in the rehearsal: no latency at all, even without a margin.
    lost = compare(*pair(tmp_path, reminders(*delivered()), reminders()))
    assert row(lost, "p95_latency") == (1.0, None, "lost")
    assert "p95_latency 1 -> none (lost)" in lost.reasons
    gained = compare(tmp_path / "rehearsal", tmp_path / "baseline")
    assert row(gained, "p95_latency") == (None, 1.0, "gained")
    assert "p95_latency" not in " ".join(gained.reasons)


def test_reminders_only_one_run_scheduled_are_counted_apart(tmp_path: Path) -> None:
    # The rehearsal ran a tick shorter: it never scheduled the last reminder.
    baseline = reminders(*delivered())
    rehearsal = reminders(*delivered(REFS[:3]), refs=REFS[:3])
    result = compare(*pair(tmp_path, baseline, rehearsal))
    assert (result.compared, result.only_baseline, result.only_rehearsal) == (
        3, ["rem-DDDDDDDD"], [])
    assert (result.owed_only_baseline, result.owed_only_rehearsal) == (1, 0)
    # Counts of reminders are over those both scheduled: one tick less delivers no fewer.
    assert row(result, "on_time")[:2] == (3.0, 3.0)
    assert row(result, "owed") == (3.0, 3.0, "shown")
    assert not result.worse and result.changed == []


@pytest.mark.parametrize(("override", "says"), [
    ("seed=3", "seed 0 in the baseline, 3 in the rehearsal"),
    ("population.borrowers=5", "population"),
    ("reminders.window=20s", "reminders.window 10 in the baseline, 20 in the rehearsal"),
    ("reminders.rate=2/s", "reminders.rate"),
    ("changes.repaid=0.5", "changes"),
])
def test_runs_that_owe_different_reminders_cannot_be_compared(
        tmp_path: Path, override: str, says: str) -> None:
    same = reminders(*delivered())
    with pytest.raises(NotComparable, match="cannot be compared: " + says.replace(".", r"\.")):
        compare(*pair(tmp_path, same, same, other=scenario(override)))


def test_runs_that_scheduled_other_reminders_cannot_be_compared(tmp_path: Path) -> None:
    folders = pair(tmp_path, reminders(*delivered()),
                   reminders(refs=("AAAAAAAA", "XXXXXXXX")))
    with pytest.raises(NotComparable, match=r"not the same schedule: reminder 2 is "
                       r"rem-BBBBBBBB \(ref BBBBBBBB, B1, 100\.00\) in the baseline and "
                       r"rem-XXXXXXXX"):
        compare(*folders)


def test_a_folder_that_cannot_be_scored_cannot_be_compared(tmp_path: Path) -> None:
    good = run_folder(tmp_path / "good", journal(*reminders(*delivered())))
    with pytest.raises(JournalError, match="no such run folder"):
        compare(good, tmp_path / "nowhere")
    (tmp_path / "bare").mkdir()
    with pytest.raises(JournalError, match=r"not a run folder \(no journal/"):
        compare(tmp_path / "bare", good)
    headless = run_folder(tmp_path / "headless", Journal(tuple(
        e for e in journal(*reminders()).events if not isinstance(e, RunStarted))))
    with pytest.raises(JournalError, match=r"headless: the journal has no run\.started"):
        compare(good, headless)


def test_margins_name_known_judged_figures_once() -> None:
    margins = parse_margins(["continuity=0.01", "p95_latency=2s", "p99_latency=20%"])
    assert {name: (m.amount, m.relative) for name, m in margins.items()} == {
        "continuity": (0.01, False), "p95_latency": (2.0, False), "p99_latency": (0.2, True)}
    for bad, says in (("contnuity=0.01", "no figure 'contnuity'; did you mean continuity?"),
                      ("zzz=1", "no figure 'zzz'; known: continuity, owed"),
                      ("owed=1", "owed is never judged"),
                      ("missed=-1", "at least 0"),
                      ("continuity", "expected FIGURE=AMOUNT"),
                      ("p95_latency=soon", "margin 'p95_latency=soon'")):
        with pytest.raises(ValueError, match=says):
            parse_margins([bad])
    with pytest.raises(ValueError, match="continuity has a margin already"):
        parse_margins(["continuity=0.01", "continuity=0.02"])


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, ["compare", *map(str, args)])
    return result.exit_code, result.output


def test_the_command_prints_writes_and_exits_with_the_verdict(tmp_path: Path) -> None:
    baseline, rehearsal = pair(tmp_path, reminders(*delivered()),
                               reminders(*delivered(REFS[:3])))
    code, out = invoke(baseline, baseline)
    assert code == 0, out
    assert "NOT WORSE than the baseline" in out
    assert (baseline / "compare.json").is_file() and (baseline / "compare.html").is_file()

    code, out = invoke(baseline, rehearsal)
    assert code == 1, out
    assert "WORSE than the baseline" in out and "NOT WORSE" not in out
    assert "1 reminder lost: rem-DDDDDDDD (B1, on_time -> missed)" in out
    assert "continuity" in out and "75.00%" in out and "-25.00%" in out
    written = Comparison.model_validate_json((rehearsal / "compare.json").read_text())
    assert written == compare(baseline, rehearsal)
    page = (rehearsal / "compare.html").read_text()
    assert "WORSE than the baseline" in page and "rem-DDDDDDDD" in page

    late = pair(tmp_path / "late", reminders(*delivered()),
                reminders(*delivered(REFS[:3]), sent(REFS[3], 30.0, arrive=15.0)))[1]
    code, out = invoke(baseline, late, "--margin", "continuity=0.3", "--out",
                       tmp_path / "elsewhere")
    assert code == 0, out
    assert json.loads((tmp_path / "elsewhere" / "compare.json").read_text())["verdict"] == (
        "not worse")


def test_the_command_exits_2_when_it_cannot_compare(tmp_path: Path) -> None:
    same = reminders(*delivered())
    baseline, other = pair(tmp_path, same, same, other=scenario("seed=9"))
    code, out = invoke(baseline, other)
    assert code == 2
    assert out.strip().splitlines() == [
        f"notifychaos: error: {baseline} and {other} cannot be compared: seed 0 in the "
        "baseline, 9 in the rehearsal"]
    assert not (other / "compare.json").exists()
    code, out = invoke(baseline, tmp_path / "nowhere")
    assert code == 2 and "no such run folder" in out
    code, out = invoke(baseline, baseline, "--margin", "p95_latncy=2s")
    assert code == 2 and "no figure 'p95_latncy'; did you mean p95_latency?" in out


def test_the_console_names_the_first_lost_reminders_and_the_file_has_them_all(
        tmp_path: Path) -> None:
    refs = tuple(f"R{i:07d}" for i in range(SHOWN_LOST + 2))
    scheduled: list[Event] = [owed(ref, 5.0 * i) for i, ref in enumerate(refs)]
    sends = [sent(ref, 5.0 * i, arrive=1.0) for i, ref in enumerate(refs)]
    baseline, rehearsal = pair(tmp_path, [*scheduled, *sends], scheduled)
    code, out = invoke(baseline, rehearsal)
    assert code == 1, out
    assert f"lost ({SHOWN_LOST + 2})" in out and "... and 2 more (all in compare.json)" in out
    assert "rem-R0000009" in out and "rem-R0000010" not in out.split("WORSE than")[0]
    written = Comparison.model_validate_json((rehearsal / "compare.json").read_text())
    assert [r.reminder_id for r in written.lost] == [f"rem-{ref}" for ref in refs]
    assert written.reasons[-1].startswith(f"{SHOWN_LOST + 2} reminders lost: rem-R0000000 (B1")
    assert written.reasons[-1].endswith("rem-R0000009 (B1, on_time -> missed) and 2 more")


_XSS = '<img src=x onerror="document.title=1">'


def test_chromium_renders_the_comparison_with_its_rows_and_no_complaint(tmp_path: Path) -> None:
    # A borrower id is text from the journal: the page must show it, never run it.
    baseline = [owed(ref, 10.0 * i, borrower=_XSS) for i, ref in enumerate(REFS)]
    folders = pair(tmp_path, [*baseline, *delivered()], [*baseline, *delivered(REFS[:3])])
    code, out = invoke(*folders)
    assert code == 1, out
    page = folders[1] / "compare.html"
    with Chromium(tmp_path / "chromium-profile") as browser:
        visit = browser.visit(page, tmp_path / "compare.png")
    assert visit.console == []
    assert set(visit.requests) <= {page.as_uri()}
    text = re.sub(r"\s+", " ", visit.text)
    assert "WORSE than the baseline" in text and "NOT WORSE" not in text
    assert "continuity 100.00% 75.00% -25.00% 0 worse" in text
    assert "p95_latency 1.00 s 1.00 s 0.00 s - not judged" in text
    assert f"rem-DDDDDDDD DDDDDDDD {_XSS} on_time missed lost" in text
    assert "1 lost (delivered in the baseline, not in the rehearsal)" in text
