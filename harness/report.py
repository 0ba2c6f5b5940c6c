"""Reports of a scored run: the files in the run folder and a short console summary."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from harness.html import html_report, several_channels
from harness.junit import junit_xml, sla_failed_the_run
from harness.scorecard import FIGURES, OUTCOMES, Scorecard


def write_reports(run_dir: Path, card: Scorecard) -> Path:
    """Write `scorecard.json`, `report.html` and `junit.xml` into the run folder; returns the
    scorecard's path."""
    scorecard = run_dir / "scorecard.json"
    scorecard.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (run_dir / "report.html").write_text(html_report(card), encoding="utf-8")
    (run_dir / "junit.xml").write_text(junit_xml(card), encoding="utf-8")
    return scorecard


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


_VERDICTS: dict[str, tuple[str, str]] = {
    "passed": ("PASSED", "bold green"),
    "failed": ("FAILED", "bold red"),
    "inconclusive": ("INCONCLUSIVE: the run cannot tell (not a pass)", "bold yellow"),
    "failed_as_expected": ("FAILED AS EXPECTED: this scenario demonstrates a failure",
                           "bold green"),
}


def verdict_text(card: Scorecard) -> Text:
    """The one-line verdict, as the console and the CI log show it."""
    why = f": {card.error}" if card.error else ""
    label, style = _VERDICTS.get(card.verdict, (f"NOT JUDGED: the run {card.status}{why}",
                                                "bold yellow"))
    return Text(label, style)


def summary(card: Scorecard) -> Group:
    """What a person reads after a run: continuity, outcomes, faults, gates, SLAs, verdict."""
    head = Text.assemble(
        (f"{card.scenario}", "bold"), f"  ({card.status}; {card.provenance()})\n",
        "continuity ", (f"{card.continuity:.2%}", "bold"),
        f" of {card.owed} owed reminders   p50 {_seconds(card.latency.p50)}"
        f"  p95 {_seconds(card.latency.p95)}  longest blackout {_seconds(card.longest_blackout)}"
        f"  max recovery {_seconds(card.max_recovery)}")
    outcomes = Table(box=None, show_header=False, pad_edge=False)
    for name, count in card.outcomes.items():
        outcomes.add_row(name.replace("_", " "), str(count))
    for label, value in (("duplicates", card.duplicates), ("unmatched sends", card.unmatched),
                         ("cancelled (repaid)", card.cancelled),
                         ("sent after repayment", card.sent_after_repayment),
                         ("sent to test data", card.sent_to_test_data),
                         ("sent after opt-out", f"{card.sent_to_opted_out} "
                                                f"(of {card.opted_out} opted out)"),
                         ("personal data shown", card.pii_exposed),
                         ("without the opt-out notice", card.missing_optout_notice),
                         ("alerts", card.alerts),
                         ("undetected faults", card.undetected_faults)):
        outcomes.add_row(label, str(value))
    parts: list[RenderableType] = [head, outcomes]
    if several_channels(card):
        shares = ", ".join(f"{channel} {_share(card, channel)}" for channel in card.channel_mix)
        parts.append(Text(f"channel mix: {_mix(card.channel_mix)} (outside faults: {shares})"))
    if card.faults:
        parts += [_faults(card), _exposure(card)]
        parts.extend(Text(f"step {f.step} {f.fault} on {f.link}: {f.effect}", "dim")
                     for f in card.faults)
    parts.extend(Text(f"FAILED {u.describe()}", "bold red") if u.failed else Text(u.describe())
                 for u in card.upgrades)
    parts.append(_vendors(card))
    if card.gates:
        parts.append(Text("notifier gates", "bold"))
        gates = Table(box=None, show_header=False, pad_edge=False)
        for gate in card.gates:
            mark = Text("pass", "green") if gate.passed else Text("FAIL", "bold red")
            value = "-" if gate.value is None else f"{gate.value:g}"
            witnesses = f"  e.g. {', '.join(gate.witnesses)}" if gate.witnesses else ""
            gates.add_row(mark, gate.expr, f"(measured {value}){witnesses}")
        parts.append(gates)
    if card.slas:
        parts.append(Text("vendor SLAs (verdicts about the vendors"
                          + (")" if sla_failed_the_run(card) else "; reported only)"), "bold"))
        slas = Table(box=None, show_header=False, pad_edge=False)
        for term in card.slas:
            mark = Text("met", "green") if term.met else Text("BREACHED", "bold red")
            value = "-" if term.value is None else f"{term.value:g}"
            slas.add_row(mark, term.vendor, term.term, f"(measured {value})")
        parts.append(slas)
    for reason in card.inconclusive:
        parts.append(Text(f"inconclusive: {reason}", "yellow"))
    parts.append(verdict_text(card))
    return Group(*parts)


_SHORT = {"on_time": "on time", "unreachable": "phone off", "wrong_content": "content",
          "wrong_recipient": "recipient"}


def _faults(card: Scorecard) -> Table:
    table = Table("step", "fault", "link", "from", "to", "touched", "detected", "recovered",
                  box=None, pad_edge=False)
    for fault in card.faults:
        detected = ("-" if not fault.expect_alert and fault.detection is None
                    else _seconds(fault.detection) if fault.detection is not None else "NO")
        table.add_row(str(fault.step), fault.fault, fault.link, _seconds(fault.applied_at),
                      _seconds(fault.reverted_at), f"{fault.touched}", detected,
                      _seconds(fault.recovery))
    return table


def _mix(mix: dict[str, int]) -> str:
    """`sms 40, push 7, email 2`."""
    return ", ".join(f"{channel} {count}" for channel, count in mix.items())


def _share(card: Scorecard, channel: str) -> str:
    """The channel's share outside faults (its `<channel>_share` figure), as a percentage."""
    value = FIGURES[f"{channel}_share"].value(card)
    return "-" if value is None else f"{value:.2%}"


def _exposure(card: Scorecard) -> Table:
    """What became of the reminders each step exposed: every outcome, so a row adds up, and by
    which channel those delivered were (when the run had several)."""
    channels = ("delivered by",) if several_channels(card) else ()
    table = Table("step", "exposed", *(_SHORT.get(o, o) for o in OUTCOMES), "duplicates",
                  *channels, box=None, pad_edge=False)
    for fault in card.faults:
        table.add_row(str(fault.step), str(fault.exposed),
                      *(str(fault.outcomes_exposed[o]) for o in OUTCOMES),
                      str(fault.duplicates_exposed),
                      *((_mix(fault.channels_exposed),) if channels else ()))
    return table


def _vendors(card: Scorecard) -> Table:
    table = Table("vendor", "sends", "accepted", "rejected", "refused", "lost", "reads",
                  "availability", "p95", box=None, pad_edge=False)
    for vendor, v in card.vendors.items():
        availability = "-" if v.availability is None else f"{v.availability:.2%}"
        counts = (v.sends, v.accepted, v.rejected, v.refused, v.lost, v.reads)
        table.add_row(vendor, *map(str, counts), availability, _seconds(v.p95_latency))
    return table
