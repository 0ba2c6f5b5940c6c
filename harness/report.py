"""Reports of a scored run: the files in the run folder and a short console summary."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from harness.continuity import Scorecard
from harness.html import html_report
from harness.junit import junit_xml


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


def summary(card: Scorecard) -> Group:
    """What a person reads after a run: continuity, outcomes, faults, gates, verdict."""
    head = Text.assemble(
        (f"{card.scenario}", "bold"), f"  ({card.status}, toxiproxy {card.toxiproxy_version})\n",
        "continuity ", (f"{card.continuity:.2%}", "bold"),
        f" of {card.owed} owed reminders   p50 {_seconds(card.latency.p50)}"
        f"  p95 {_seconds(card.latency.p95)}  longest blackout {_seconds(card.longest_blackout)}")
    outcomes = Table(box=None, show_header=False, pad_edge=False)
    for name, count in card.outcomes.items():
        outcomes.add_row(name.replace("_", " "), str(count))
    outcomes.add_row("duplicates", str(card.duplicates))
    outcomes.add_row("unmatched sends", str(card.unmatched))
    outcomes.add_row("sent after STOP", f"{card.sent_to_opted_out} (of {card.opted_out} opted out)")
    faults = Table("fault", "link", "from", "to", "detected after", "exposed", "on time",
                   "missed", "duplicates", "recovered after", box=None, pad_edge=False)
    for fault in card.faults:
        faults.add_row(fault.fault, fault.link, _seconds(fault.applied_at),
                       _seconds(fault.reverted_at), _seconds(fault.detection),
                       str(fault.exposed), str(fault.outcomes_exposed["on_time"]),
                       str(fault.outcomes_exposed["missed"]), str(fault.duplicates_exposed),
                       _seconds(fault.recovery))
    vendors = Table("vendor", "calls", "accepted", "read", "rejected", "refused", "lost",
                    "availability", "p95", "SLA", box=None, pad_edge=False)
    for vendor, v in card.vendors.items():
        sla = "-" if v.sla_met is None else "met" if v.sla_met else "BREACHED"
        availability = "-" if v.availability is None else f"{v.availability:.2%}"
        counts = (v.calls, v.accepted, v.read, v.rejected, v.refused, v.lost)
        vendors.add_row(vendor, *map(str, counts), availability, _seconds(v.p95_latency), sla)
    gates = Table(box=None, show_header=False, pad_edge=False)
    for gate in card.gates:
        mark = Text("pass", "green") if gate.passed else Text("FAIL", "bold red")
        value = "-" if gate.value is None else f"{gate.value:g}"
        gates.add_row(mark, gate.expr, f"(measured {value})")
    verdict = (Text("PASSED", "bold green") if card.passed
               else Text("FAILED", "bold red") if card.status == "completed"
               else Text(f"NOT JUDGED: the run {card.status}", "bold yellow"))
    parts: list[RenderableType] = [head, outcomes]
    if card.faults:
        parts.append(faults)
    parts.append(vendors)
    if card.gates:
        parts.append(gates)
    parts.append(verdict)
    return Group(*parts)
