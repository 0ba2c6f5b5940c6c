"""The scenario files' JSON Schema: generated from the model, shipped in docs/, printed by the CLI,
and it agrees with the model on the shipped scenarios and on wrong files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from harness.errors import ScenarioError
from harness.scenario import parse_scenario
from harness.schema import scenario_schema, scenario_schema_text

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
VALIDATOR = jsonschema.Draft202012Validator(scenario_schema())


def _errors(document: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(document)]


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(scenario_schema())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_validates(path: Path) -> None:
    assert _errors(yaml.safe_load(path.read_text("utf-8"))) == []


def test_the_shipped_schema_file_is_the_generated_one() -> None:
    # Regenerate with: .venv/bin/notifychaos schema > docs/scenario.schema.json
    assert (ROOT / "docs" / "scenario.schema.json").read_text("utf-8") == scenario_schema_text()


def test_the_schema_command_prints_it() -> None:
    printed = subprocess.run([sys.executable, "-m", "harness", "schema"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    assert json.loads(printed) == scenario_schema()


def _shipped(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
    return data


def _with(changes: dict[str, Any], at: tuple[str, ...] = ()) -> dict[str, Any]:
    document = _shipped("primary-vendor-outage")
    place = document
    for key in at:
        place = place[key]
    place.update(changes)
    return document


@pytest.mark.parametrize(("changes", "at", "where"), [
    ({"duration": "30 seconds"}, (), "['duration']"),
    ({"duration": "-5s"}, (), "['duration']"),
    ({"rate": "fast"}, ("reminders",), "['reminders', 'rate']"),
    ({"gates": ["continuity >= 0.99", "happiness >= 1"]}, (), "['gates', 1]"),
    ({"gates": ["continuity 0.99"]}, (), "['gates', 0]"),
    ({"duraton": "60s"}, (), "[]"),
    ({"target": {"command": ["notifier"]}}, (), "['target']"),
    ({"timeline": [{"at": "30s", "for": None, "fault": "proxy.down", "link": "vendors.twilio"}]},
     (), "['timeline', 0, 'for']"),
], ids=["duration-words", "negative-duration", "rate-word", "unknown-metric", "no-operator",
        "misspelt-key", "no-health", "for-without-value"])
def test_a_wrong_file_does_not_validate_and_the_model_agrees(
        changes: dict[str, Any], at: tuple[str, ...], where: str) -> None:
    document = _with(changes, at)
    errors = _errors(document)
    assert errors and any(error.startswith(where + ":") for error in errors), errors
    with pytest.raises(ScenarioError):
        parse_scenario(yaml.safe_dump(document, allow_unicode=True))


def test_durations_and_rates_are_strings_with_patterns_or_numbers() -> None:
    reminders = scenario_schema()["$defs"]["Reminders"]["properties"]
    for key in ("window", "lead", "rate"):
        kinds = {branch["type"] for branch in reminders[key]["anyOf"]}
        assert kinds == {"string", "number"}, key
        [string] = [branch for branch in reminders[key]["anyOf"] if branch["type"] == "string"]
        assert string["pattern"].startswith("^")
    for good in ("30s", "1m30s", "500ms", "1.5h"):
        assert _errors(_with({"duration": good})) == [], good
    assert _errors(_with({"rate": "120/m"}, ("reminders",))) == []
