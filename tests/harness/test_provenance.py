"""The scorecard names the seed and the versions a run used, and every report shows them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from harness.continuity import score
from harness.journal import Journal, RunStarted
from harness.report import summary, write_reports
from harness.versions import run_versions
from tests.harness.journals import journal, owed, scenario, sent

VERSIONS = {"notifychaos": "0.1.0", "locust": "2.47.0", "python": "3.11.7"}
NAMED = "seed 42, notifychaos 0.1.0, toxiproxy 2.12.0, locust 2.47.0, python 3.11.7"


def _recorded(run: Journal, versions: dict[str, str]) -> Journal:
    """`run` with `versions` in its run.started, as the harness records them."""
    return Journal(tuple(event.model_copy(update={"versions": versions})
                         if isinstance(event, RunStarted) else event for event in run.events))


def test_the_scorecard_names_the_seed_and_every_version() -> None:
    card = score(_recorded(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
                                   run=scenario("seed=42")), VERSIONS))
    assert card.seed == 42
    assert card.versions == {**VERSIONS, "toxiproxy": "2.12.0"}
    assert card.provenance() == NAMED


def test_every_report_shows_them(tmp_path: Path) -> None:
    card = score(_recorded(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
                                   run=scenario("seed=42")), VERSIONS))
    write_reports(tmp_path, card)
    data = json.loads((tmp_path / "scorecard.json").read_text())
    assert (data["seed"], data["versions"]["locust"]) == (42, "2.47.0")
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert {key: properties[key] for key in ("seed", "notifychaos_version",
                                             "toxiproxy_version", "locust_version",
                                             "python_version")} == {
        "seed": "42", "notifychaos_version": "0.1.0", "toxiproxy_version": "2.12.0",
        "locust_version": "2.47.0", "python_version": "3.11.7"}
    assert NAMED in (tmp_path / "report.html").read_text()
    console = Console(width=200, record=True)
    console.print(summary(card))
    assert NAMED in console.export_text()


def test_a_run_recorded_before_versions_names_what_it_knows() -> None:
    card = score(journal(owed("AAAAAAAA", 0), run=scenario("seed=3")))
    assert card.provenance() == "seed 3, toxiproxy 2.12.0"


def test_the_harness_records_its_own_versions() -> None:
    versions = run_versions()
    assert list(versions) == ["notifychaos", "locust", "python"]
    assert all(value and value != "not installed" for value in versions.values())
