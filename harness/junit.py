"""The scorecard as JUnit XML: each gate and each vendor SLA term a test case, so CI shows which
one failed and why; the notifier's gates and the vendors' SLA terms are separate classes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.scorecard import Scorecard


def _measured(value: float | None) -> str:
    return "no value" if value is None else f"measured {value:g}"


def sla_failed_the_run(card: Scorecard) -> bool:
    """Whether the run failed on its vendors' SLAs alone (the scenario's fail_on_sla_breach)."""
    return card.verdict == "failed" and card.sla_breaches > 0 and all(g.passed for g in card.gates)


def junit_xml(card: Scorecard) -> str:
    """One test suite named after the scenario. A failed or unjudged gate is a failure; an
    inconclusive run adds a failing `conclusive` case with its reasons; a breached SLA term is a
    failure only when the scenario lets SLAs fail the run, else it is reported in system-out."""
    judged = card.status == "completed"
    gates = f"notifychaos.{card.scenario}.gates"
    suite = ET.Element("testsuite", {"name": f"notifychaos.{card.scenario}",
                                     "timestamp": card.started_at, "errors": "0"})
    properties = ET.SubElement(suite, "properties")
    for name, value in (("verdict", card.verdict), ("continuity", card.continuity),
                        ("owed", card.owed), ("status", card.status),
                        ("toxiproxy_version", card.toxiproxy_version)):
        ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    failures = 0
    for gate in card.gates:
        case = ET.SubElement(suite, "testcase", {"classname": gates, "name": gate.expr})
        if not judged or not gate.passed:
            failures += 1
            message = (f"run {card.status}; {_measured(gate.value)}" if not judged
                       else f"{gate.expr}: {_measured(gate.value)}")
            failure = ET.SubElement(case, "failure", {"message": message})
            if gate.witnesses:
                failure.text = "witnesses: " + ", ".join(gate.witnesses)
    if judged and card.inconclusive:
        failures += 1
        case = ET.SubElement(suite, "testcase", {"classname": gates, "name": "conclusive"})
        failure = ET.SubElement(case, "failure", {
            "message": "inconclusive: the run cannot tell whether the notifier copes"})
        failure.text = "\n".join(card.inconclusive)
    sla_fails = sla_failed_the_run(card)
    for term in card.slas:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"notifychaos.{card.scenario}.slas.{term.vendor}", "name": term.term})
        if term.met:
            continue
        message = f"{term.vendor} {term.term}: {_measured(term.value)}"
        if sla_fails:
            failures += 1
            ET.SubElement(case, "failure", {"message": message})
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"BREACHED, reported only (the scenario does not fail on SLAs): {message}"
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(failures))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
