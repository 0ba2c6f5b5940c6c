"""The scorecard as JUnit XML: each gate is a test case, so CI shows which one failed and why."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.continuity import Scorecard


def junit_xml(card: Scorecard) -> str:
    """One test suite named after the scenario; a failed or unjudged gate is a failure."""
    judged = card.status == "completed"
    suite = ET.Element("testsuite", {
        "name": f"notifychaos.{card.scenario}", "tests": str(len(card.gates)),
        "failures": str(sum(1 for g in card.gates if not (g.passed and judged))),
        "errors": "0", "timestamp": card.started_at})
    properties = ET.SubElement(suite, "properties")
    for name, value in (("continuity", card.continuity), ("owed", card.owed),
                        ("status", card.status), ("toxiproxy_version", card.toxiproxy_version)):
        ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    for gate in card.gates:
        case = ET.SubElement(suite, "testcase", {"classname": f"notifychaos.{card.scenario}",
                                                 "name": gate.expr})
        measured = "no value" if gate.value is None else f"measured {gate.value:g}"
        if not judged:
            ET.SubElement(case, "failure", {"message": f"run {card.status}; {measured}"})
        elif not gate.passed:
            ET.SubElement(case, "failure", {"message": f"{gate.expr}: {measured}"})
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
