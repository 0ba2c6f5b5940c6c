"""The HTML report: what the page says for each verdict, the chart's geometry, that it is
self-contained and escaped, and that real headless Chromium renders it without a complaint."""

from __future__ import annotations

import re
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.chart import run_chart, step_label
from harness.html import html_report
from harness.scorecard import (
    OUTCOMES,
    Attempt,
    FaultFigures,
    GateResult,
    Latency,
    LoadFigures,
    Outcome,
    ReminderTrace,
    Sample,
    Scorecard,
    SlaResult,
    VendorFigures,
    Verdict,
)
from tests.harness.chromium import Chromium, chromium_binary

_XSS = "<img src=x onerror=\"console.error('escaped badly')\">"
"""Markup in a value the page prints: escaped, it is text; unescaped, Chromium would log and
request it."""

OUTCOME_COUNTS: dict[Outcome, int] = {
    "on_time": 1711, "late": 97, "missed": 61, "early": 3, "filtered": 22, "unreachable": 9,
    "wrong_content": 5, "wrong_recipient": 2}


def fault(step: int, kind: str, link: str, applied: float, reverted: float | None,
          touched: int = 40, **exposed: int) -> FaultFigures:
    outcomes: dict[Outcome, int] = {name: exposed.get(name, 0) for name in OUTCOMES}
    return FaultFigures(
        step=step, fault=kind, link=link, applied_at=applied, reverted_at=reverted,
        touched=touched, effect=f"{touched} connections refused" if touched else "nothing",
        expect_alert=kind.startswith("proxy"), detection=4.5 if step == 0 else None,
        exposed=sum(outcomes.values()), outcomes_exposed=outcomes, duplicates_exposed=step,
        recovery=12.25 if reverted is not None else None)


def series(seconds: int = 120) -> list[Sample]:
    """20 reminders fall due a second; during the outage (30-60 s) only a fifth arrive on time,
    and the backlog drains by 60 a second after it."""
    samples, on_time, backlog = [], 0, 0
    for t in range(seconds + 1):
        delivered = 20 + min(backlog, 60) if not 30 <= t < 60 else 4
        backlog = max(backlog + 20 - delivered, 0) if t else 0
        on_time += delivered if t else 0
        samples.append(Sample(t=float(t), due=20 * t, on_time=on_time, backlog=backlog))
    return samples


def trace(reminder: str, ref: str, outcome: Outcome, why: str,
          attempts: list[Attempt]) -> ReminderTrace:
    return ReminderTrace(reminder_id=reminder, ref=ref, borrower_id="B-00042", outcome=outcome,
                         why=why, remind_at=31.0, send_by=51.0, attempts=attempts)


def rich_card(**changes: Any) -> Scorecard:
    """A run of the demo scenario that failed: three faults (two overlapping, one instant), a
    failed gate with witnesses, a breached SLA, the worst reminders with their attempts."""
    card = Scorecard(
        scenario="primary-vendor-outage", status="completed", verdict="failed",
        toxiproxy_version="2.12.0", started_at="2026-12-01T10:00:00Z",
        ended_at="2026-12-01T10:02:30Z", owed=1910, unsettled=4, cancelled=17,
        continuity=1711 / 1910, outcomes=OUTCOME_COUNTS, duplicates=3, unmatched=1,
        opted_out=12, sent_to_opted_out=0, sent_after_repayment=2,
        latency=Latency(p50=1.2, p95=14.75, p99=31.5), longest_blackout=29.5,
        max_recovery=12.25, alerts=2, undetected_faults=1, detection_time=4.5,
        faults=[fault(0, "proxy.down", "vendors.twilio", 30.0, 60.0, on_time=140, late=97,
                      missed=61, wrong_recipient=2),
                fault(1, "vendor.dlr", "vendors.aliyun", 40.0, 70.0, touched=18, on_time=300,
                      filtered=22),
                fault(2, "process.kill", "target", 80.0, None, touched=1, on_time=20,
                      unreachable=9)],
        inconclusive=[],
        vendors={"twilio": VendorFigures(sends=1200, accepted=860, rejected=4, refused=330,
                                         lost=6, reads=25, availability=0.7167,
                                         p95_latency=1.05),
                 "aliyun": VendorFigures(sends=1100, accepted=1100, rejected=0, refused=0,
                                         lost=0, reads=0, availability=1.0, p95_latency=0.31)},
        slas=[SlaResult(vendor="twilio", term="availability >= 0.999", value=0.7167, met=False),
              SlaResult(vendor="aliyun", term="p95_latency <= 2s", value=0.31, met=True)],
        sla_breaches=1, load=LoadFigures(exit_code=0, requests=5400, failures=3),
        gates=[GateResult(expr="continuity >= 0.99", value=1711 / 1910, passed=False,
                          witnesses=["R-000311", "R-000377", "QX7Z2K9A"]),
               GateResult(expr="duplicates == 0", value=3, passed=False,
                          witnesses=["R-000502"]),
               GateResult(expr="p95_latency <= 15s", value=14.75, passed=True)],
        series=series(),
        worst=[trace("R-000311", "K3M9P2QD", "missed",
                     "Twilio refused every attempt while down; no other vendor was tried",
                     [Attempt(t=31.2, vendor="twilio", to="+8613800000042", handset="refused",
                              inbox_at=None, message_id="-",
                              faults=["step 0 proxy.down vendors.twilio"],
                              verdict="refused: connection reset")]),
               trace("R-000377", "QX7Z2K9A", "late", _XSS,
                     [Attempt(t=33.0, vendor="twilio", to="+8613800000077", handset="-",
                              inbox_at=None, message_id="-",
                              faults=["step 0 proxy.down vendors.twilio"],
                              verdict="refused"),
                      Attempt(t=58.4, vendor="aliyun", to="+8613800000077",
                              handset="delivered", inbox_at=59.1, message_id="ali-9911",
                              faults=["step 1 vendor.dlr vendors.aliyun"],
                              verdict="late by 8.1 s")])],
        passed=False)
    return card.model_copy(update=changes)


def text_of(page: str) -> str:
    """The page's words, without markup (what a reader sees, roughly)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


# --- what the page says -------------------------------------------------------------------------

@pytest.mark.parametrize(("verdict", "status", "headline", "reason"), [
    ("passed", "completed", "PASSED", "every gate held and every fault was seen to act"),
    ("failed", "completed", "FAILED", "continuity &gt;= 0.99 (measured 0.895812)"),
    ("inconclusive", "completed", "INCONCLUSIVE", "step 2 process.kill target touched nothing"),
    ("failed_as_expected", "completed", "FAILED AS EXPECTED", "a demonstration"),
    ("not_judged", "interrupted", "NOT JUDGED: the run interrupted", "did not complete"),
])
def test_the_verdict_heads_the_page(verdict: Verdict, status: str, headline: str,
                                    reason: str) -> None:
    page = html_report(rich_card(verdict=verdict, status=status, inconclusive=[
        "step 2 process.kill target touched nothing"]))
    banner = page.split('<section class="banner', 1)[1].split("</section>", 1)[0]
    assert f'<p class="headline">{headline}</p>' in banner
    assert reason in banner
    assert f"<title>notifychaos · primary-vendor-outage · {headline}</title>" in page


def test_a_failed_run_names_its_failed_gates_and_the_sla_only_when_it_decided() -> None:
    failed = html_report(rich_card())
    banner = failed.split('id="verdict"', 1)[1].split("</section>", 1)[0]
    assert "duplicates == 0 (measured 3)" in banner and "p95_latency" not in banner
    assert "broke its SLA" not in banner and "this one does" not in failed

    passing_gates = [g.model_copy(update={"passed": True}) for g in rich_card().gates]
    on_sla = html_report(rich_card(gates=passing_gates))
    banner = on_sla.split('id="verdict"', 1)[1].split("</section>", 1)[0]
    assert ("twilio broke its SLA: availability &gt;= 0.999 (measured 0.7167); the scenario "
            "sets fail_on_sla_breach") in banner
    assert "this one does, and a breach failed the run" in on_sla


def test_gates_and_sla_verdicts_are_separate_sections() -> None:
    page = html_report(rich_card())
    gates = page.split("<h2>The notifier's gates</h2>", 1)[1].split("<h2>", 1)[0]
    slas = page.split("<h2>The vendors' SLA verdicts</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<code>continuity &gt;= 0.99</code>" in gates and "availability &gt;= 0.999" not in gates
    assert "<code>availability &gt;= 0.999</code>" in slas and "BREACHED" in slas
    assert "continuity" not in slas
    assert ("They do not decide the exit code unless the scenario sets "
            "<code>fail_on_sla_breach</code>") in slas
    # a witness that has a trace links to it, by reminder id or by ref; others are plain
    assert '<a href="#trace-0"><code>R-000311</code></a>' in gates
    assert '<a href="#trace-1"><code>QX7Z2K9A</code></a>' in gates
    assert "<code>R-000502</code>" in gates and 'href="#trace-2"' not in gates
    assert 'id="trace-1"' in page
    # the figure a gate names says what it means
    assert 'title="on-time reminders / owed reminders (0..1)"><code>continuity' in gates


def test_every_figure_and_every_outcome_is_shown() -> None:
    card = rich_card()
    words = text_of(html_report(card))
    assert "Continuity 89.58% of 1910 owed reminders" in words
    assert "4 still unsettled when the run ended, 17 cancelled by a repayment" in words
    for name, count in OUTCOME_COUNTS.items():
        assert f" {name.replace('_', ' ')} {count} {count / 1910:.2%} " in words
    for figure in ("p95_latency 14.75 s", "longest_blackout 29.50 s", "undetected_faults 1",
                   "detection_time 4.50 s", "max_recovery 12.25 s", "sent_after_repayment 2"):
        assert figure in words
    assert "twilio 1200 860 4 330 6 25 71.67% 1.05 s" in words
    assert "aliyun 1100 1100 0 0 0 0 100.00% 0.31 s" in words


def _tables(section: str) -> list[list[list[str]]]:
    """Each table of a section as rows of cell texts (header row first)."""
    return [[[text_of(cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row,
                                                          re.S)]
             for row in table.split("</tr>")[:-1]]
            for table in section.split("</table>")[:-1]]


def test_each_fault_shows_its_effect_and_its_exposed_outcomes_adding_up() -> None:
    page = html_report(rich_card())
    effects, exposure = _tables(page.split("<h2>Faults</h2>", 1)[1].split("<h2>", 1)[0])
    assert effects == [
        ["step", "from", "to", "touched", "measured effect", "alert expected", "detected after",
         "recovered after"],
        ["step 0 proxy.down vendors.twilio", "30.00 s", "60.00 s", "40",
         "40 connections refused", "yes", "4.50 s", "12.25 s"],
        ["step 1 vendor.dlr vendors.aliyun", "40.00 s", "70.00 s", "18",
         "18 connections refused", "no", "-", "12.25 s"],
        ["step 2 process.kill target", "80.00 s", "instant", "1", "1 connections refused",
         "no", "-", "never"]]
    assert exposure[0] == ["step", "exposed", *(o.replace("_", " ") for o in OUTCOMES),
                           "duplicates"]
    for row, figures in zip(exposure[1:], rich_card().faults, strict=True):
        assert row[0] == step_label(figures)
        counts = [int(n) for n in row[1:]]
        assert counts[1:-1] == [figures.outcomes_exposed[o] for o in OUTCOMES]
        assert counts[0] == sum(counts[1:-1])
        assert counts[-1] == figures.duplicates_exposed
    silent = rich_card(faults=[fault(0, "proxy.latency", "ledger", 10.0, 20.0, touched=0)])
    assert "nothing (touched nothing)" in text_of(html_report(silent))
    undetected = rich_card(faults=[fault(3, "proxy.down", "ledger", 10.0, 20.0)])
    assert "not detected" in text_of(html_report(undetected))


def test_the_worst_reminders_show_every_attempt() -> None:
    words = text_of(html_report(rich_card()))
    assert ("R-000311 · ref K3M9P2QD · borrower B-00042 · missed Twilio refused every attempt "
            "while down; no other vendor was tried (owed from 31.00 s, on time until 51.00 s)"
            ) in words
    assert ("31.20 s twilio +8613800000042 refused never step 0 proxy.down vendors.twilio - "
            "refused: connection reset") in words
    assert ("58.40 s aliyun +8613800000077 delivered 59.10 s step 1 vendor.dlr vendors.aliyun "
            "ali-9911 late by 8.1 s") in words
    assert "No reminder went wrong." in text_of(html_report(rich_card(worst=[])))


def test_everything_is_escaped_and_nothing_is_fetched() -> None:
    page = html_report(rich_card(scenario="a<b>&c"))
    assert "<img" not in page and "&lt;img src=x onerror=" in page
    assert "<h1>a&lt;b&gt;&amp;c</h1>" in page
    assert not re.search(r"""\b(src|href|action|xlink:href)\s*=\s*["']?(https?:)?//""", page)
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page)
    assert "@import" not in page and "url(" not in page


# --- the chart ----------------------------------------------------------------------------------

def test_the_chart_maps_time_and_counts_onto_the_plot() -> None:
    samples = [Sample(t=0, due=0, on_time=0, backlog=0), Sample(t=50, due=100, on_time=50,
                                                                backlog=50),
               Sample(t=100, due=200, on_time=200, backlog=0)]
    chart = run_chart(samples, [fault(0, "proxy.down", "vendors.twilio", 25.0, 75.0)])
    assert chart is not None
    assert [t.label for t in chart.x_ticks] == [str(t) for t in range(0, 101, 10)]
    assert [t.label for t in chart.y_ticks] == ["0", "50", "100", "150", "200"]
    left, right, top, bottom = chart.left, chart.right, chart.top, chart.bottom
    middle = (left + right) / 2
    assert chart.due == f"{left:.1f},{bottom:.1f} {middle:.1f},{(top + bottom) / 2:.1f} " \
                        f"{right:.1f},{top:.1f}"
    assert chart.backlog.split()[0] == f"{left:.1f},{bottom:.1f}"
    assert chart.backlog.split()[-1] == f"{right:.1f},{bottom:.1f}"
    (mark,) = chart.faults
    assert mark.label == "step 0 proxy.down vendors.twilio" and not mark.instant
    assert mark.x == pytest.approx(left + (right - left) / 4, abs=0.1)
    assert mark.width == pytest.approx((right - left) / 2, abs=0.1)
    assert mark.lane_y < top < bottom


def test_overlapping_fault_labels_take_separate_lanes_and_instants_are_lines() -> None:
    faults = rich_card().faults
    chart = run_chart(series(), faults)
    assert chart is not None
    down, dlr, kill = chart.faults
    assert down.lane_y != dlr.lane_y  # 30-60 s and 40-70 s overlap
    assert kill.instant and kill.width == 0
    assert kill.lane_y == down.lane_y  # 80 s is clear of the first label
    assert [m.label for m in chart.faults] == [step_label(f) for f in faults]
    assert step_label(faults[2]) == "step 2 process.kill target"
    assert run_chart([], faults) is None


def test_a_chart_of_one_moment_still_spans_its_faults() -> None:
    late = fault(0, "proxy.down", "vendors.twilio", 5.0, 9.5)
    chart = run_chart([Sample(t=0, due=0, on_time=0, backlog=0)], [late])
    assert chart is not None
    assert [t.label for t in chart.x_ticks] == [str(t) for t in range(11)]
    assert [t.label for t in chart.y_ticks] == ["0", "1"]
    (mark,) = chart.faults
    assert mark.x == pytest.approx((chart.left + chart.right) / 2, abs=0.1)
    assert mark.x + mark.width < chart.right
    assert mark.label_x + len(mark.label) * 7.3 <= chart.right


def test_the_svg_carries_every_fault_label() -> None:
    page = html_report(rich_card())
    svg = page.split("<svg", 1)[1].split("</svg>", 1)[0]
    for label in ("step 0 proxy.down vendors.twilio", "step 1 vendor.dlr vendors.aliyun",
                  "step 2 process.kill target"):
        assert f">{label}</text>" in svg
    assert svg.count('class="window ') == 2 and svg.count('class="instant ') == 1
    assert "No samples" in html_report(rich_card(series=[]))


# --- real headless Chromium ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    with Chromium(tmp_path_factory.mktemp("chromium-profile")) as chromium:
        yield chromium


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_chromium_renders_the_report_with_its_figures_and_no_complaint(
        browser: Chromium, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(html_report(rich_card()), encoding="utf-8")
    visit = browser.visit(page, tmp_path / "report.png")

    assert visit.console == []
    assert set(visit.requests) <= {page.as_uri()}
    text = re.sub(r"\s+", " ", visit.text)
    assert "FAILED" in text and "Continuity 89.58% of 1910 owed reminders" in text
    for name, count in OUTCOME_COUNTS.items():
        assert f"{name.replace('_', ' ')} {count} {count / 1910:.2%}" in text
    for expr in ("continuity >= 0.99", "duplicates == 0", "p95_latency <= 15s",
                 "availability >= 0.999"):
        assert expr in text
    assert _XSS in text  # shown as text, not run
    assert {"step 0 proxy.down vendors.twilio", "step 1 vendor.dlr vendors.aliyun",
            "step 2 process.kill target", "seconds from the start of load"} <= set(visit.svg_text)
    assert visit.chart_width > 800  # laid out at the page's width, not collapsed
    png = visit.screenshot.read_bytes()
    width, height = _png_size(png)
    assert width == 1280 and height > 2000  # the whole page, beyond the first screen
    assert len(png) > 50_000  # a page with a chart and tables, not a blank sheet


def test_chromium_reports_console_errors_and_requests(browser: Chromium, tmp_path: Path) -> None:
    """The check above can fail: a page that logs and fetches is caught doing both."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><title>bad</title><p>bad</p>"
                    "<script>console.error('boom')</script><img src='missing.png'>",
                    encoding="utf-8")
    visit = browser.visit(page, tmp_path / "bad.png")
    assert "console.error: boom" in visit.console
    assert any("missing.png" in line for line in visit.console)
    assert (tmp_path / "missing.png").as_uri() in visit.requests


def test_without_chromium_the_browser_test_skips_only_where_it_cannot_be_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"apt-get"}
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name in present
                        else None)
    with pytest.raises(pytest.fail.Exception, match=r"run \./dev setup"):
        chromium_binary()
    present.clear()
    with pytest.raises(pytest.skip.Exception, match="no apt-get to install it"):
        chromium_binary()
