"""Scorecards as JUnit XML: each gate and each vendor SLA term a test case, so CI shows which
one failed and why; the notifier's gates and the vendors' SLA terms are separate classes. A
suite's file holds one such test suite per run, plus its scenarios' verdicts over repeats and
their baseline comparisons."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from harness.scorecard import VERSIONED, Scorecard

if TYPE_CHECKING:
    from harness.suite import ScenarioRuns


def _measured(value: float | None) -> str:
    return "no value" if value is None else f"measured {value:g}"


def sla_failed_the_run(card: Scorecard) -> bool:
    """Whether the run failed on its vendors' SLAs alone (the scenario's fail_on_sla_breach)."""
    return card.verdict == "failed" and card.sla_breaches > 0 and all(g.passed for g in card.gates)


def run_seconds(card: Scorecard) -> float:
    """How long the run took (0 when it has no end)."""
    if card.ended_at is None:
        return 0.0
    ended = datetime.fromisoformat(card.ended_at)
    return max(0.0, (ended - datetime.fromisoformat(card.started_at)).total_seconds())


def junit_xml(card: Scorecard) -> str:
    """The run's own JUnit file: its one test suite (see `testsuite`)."""
    return _document(testsuite(card))


def testsuite(card: Scorecard) -> ET.Element:
    """One test suite named after the scenario, its `time` the run's seconds (each case judges
    the whole run, so takes none of its own). A failed or unjudged gate is a failure; an
    inconclusive run adds a failing `conclusive` case with its reasons; each upgrade step is a
    case (class `.upgrade`), failing when it was rolled back; a breached SLA term is a failure
    only when the scenario lets SLAs fail the run, else it is reported in system-out."""
    judged = card.status == "completed"
    gates = f"notifychaos.{card.scenario}.gates"
    suite = ET.Element("testsuite", {"name": f"notifychaos.{card.scenario}",
                                     "timestamp": card.started_at, "errors": "0",
                                     "time": f"{run_seconds(card):.3f}"})
    properties = ET.SubElement(suite, "properties")
    for name, value in (("verdict", card.verdict), ("continuity", card.continuity),
                        ("owed", card.owed), ("status", card.status),
                        ("toxiproxy_version", card.toxiproxy_version), ("seed", card.seed),
                        *((f"{tool}_version", card.versions[tool]) for tool in VERSIONED
                          if tool != "toxiproxy" and tool in card.versions)):
        ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    failures = 0
    for gate in card.gates:
        case = _case(suite, gates, gate.expr)
        if not judged or not gate.passed:
            failures += 1
            message = (f"run {card.status}; {_measured(gate.value)}" if not judged
                       else f"{gate.expr}: {_measured(gate.value)}")
            failure = ET.SubElement(case, "failure", {"message": message})
            failure.text = _figures(card) + (
                "\nwitnesses: " + ", ".join(gate.witnesses) if gate.witnesses else "")
    for upgrade in card.upgrades:
        case = _case(suite, f"notifychaos.{card.scenario}.upgrade", f"step {upgrade.step} upgrade")
        if upgrade.failed:
            failures += 1
            ET.SubElement(case, "failure", {"message": upgrade.describe()})
        else:
            ET.SubElement(case, "system-out").text = upgrade.describe()
    if judged and card.inconclusive:
        failures += 1
        case = _case(suite, gates, "conclusive")
        failure = ET.SubElement(case, "failure", {
            "message": "inconclusive: the run cannot tell whether the notifier copes"})
        failure.text = "\n".join(card.inconclusive)
    sla_fails = sla_failed_the_run(card)
    for term in card.slas:
        case = _case(suite, f"notifychaos.{card.scenario}.slas.{term.vendor}", term.term)
        if term.met:
            continue
        message = f"{term.vendor} {term.term}: {_measured(term.value)}"
        if sla_fails:
            failures += 1
            ET.SubElement(case, "failure", {"message": message})
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"BREACHED, reported only (the scenario does not fail on SLAs): {message}"
    return _counted(suite, failures)


def suite_junit_xml(scenarios: Sequence[ScenarioRuns], name: str = "notifychaos") -> str:
    """A suite's JUnit file: one `<testsuites>` with each run's test suite; for a scenario run
    more than once, a `<scenario>.repeats` suite with each gate judged on its aggregate figure;
    for a scenario given a baseline, a `<scenario>.baseline` suite with one case per compared
    figure; for a scenario that could not run, a suite with one erroring case."""
    root = ET.Element("testsuites", {"name": name})
    for runs in scenarios:
        root.extend(testsuite(result.scorecard) for result in runs.results)
        prefix = f"notifychaos.{runs.scenario}"
        if runs.error is not None:
            suite = ET.SubElement(root, "testsuite", {"name": f"{prefix}.run", "errors": "1",
                                                      "time": "0"})
            case = _case(suite, f"{prefix}.run", "runs")
            ET.SubElement(case, "error", {"message": "could not run"}).text = runs.error
            _counted(suite, 0)
        if len(runs.results) > 1:
            suite = ET.SubElement(root, "testsuite", {"name": f"{prefix}.repeats", "errors": "0",
                                                      "time": "0"})
            properties = ET.SubElement(suite, "properties")
            for key, value in (("gate_on", runs.gate_on), ("runs", len(runs.results)),
                               ("verdict", runs.verdict)):
                ET.SubElement(properties, "property", {"name": key, "value": str(value)})
            for s in runs.spreads:
                ET.SubElement(properties, "property", {
                    "name": f"spread.{s.figure}",
                    "value": f"min {_num(s.low)} median {_num(s.median)} max {_num(s.high)}"})
            failures = 0
            for gate in runs.gates:
                case = _case(suite, f"{prefix}.repeats", gate.expr)
                if not gate.passed:
                    failures += 1
                    failure = ET.SubElement(case, "failure", {
                        "message": f"{gate.expr}: {runs.gate_on} of {len(runs.results)} runs "
                                   f"{_measured(gate.value)}"})
                    if gate.witnesses:
                        failure.text = "witnesses: " + ", ".join(gate.witnesses)
            _counted(suite, failures)
        if runs.comparison is not None:
            suite = ET.SubElement(root, "testsuite", {"name": f"{prefix}.baseline", "errors": "0",
                                                      "time": "0"})
            properties = ET.SubElement(suite, "properties")
            ET.SubElement(properties, "property", {"name": "baseline",
                                                   "value": runs.comparison.baseline_source})
            failures = 0
            for compared in runs.comparison.figures:
                case = _case(suite, f"{prefix}.baseline", compared.figure)
                if compared.regressed:
                    failures += 1
                    ET.SubElement(case, "failure", {"message": "regressed: "
                                                    + compared.describe()})
                else:
                    ET.SubElement(case, "system-out").text = compared.describe()
            _counted(suite, failures)
    suites = root.findall("testsuite")
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in suites):.3f}")
    return _document(root)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _figures(card: Scorecard) -> str:
    return (f"continuity {card.continuity:g} of {card.owed} owed; p95 latency "
            f"{_num(card.latency.p95)}; longest blackout {card.longest_blackout:g}; "
            f"duplicates {card.duplicates}")


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": name, "time": "0"})


def _counted(suite: ET.Element, failures: int) -> ET.Element:
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(failures))
    return suite


def _document(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
