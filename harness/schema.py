"""The JSON Schema of scenario files, generated from the scenario model, for editors and checks."""

from __future__ import annotations

import json
from typing import Any

from harness.scenario import Scenario
from harness.scorecard import FIGURES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _gate_schema() -> dict[str, Any]:
    """A gate as a file writes it: `metric op value`, the metric one of the registered figures
    (the model keeps a parsed Gate, which is not what a file holds)."""
    metrics = "|".join(sorted(FIGURES, key=len, reverse=True))
    return {
        "type": "string",
        "pattern": rf"^\s*({metrics})\s*(>=|<=|==|!=|>|<)\s*\S+\s*$",
        "description": "a gate 'metric op value', e.g. 'continuity >= 0.99' or "
                       "'p95_latency <= 15s'; metrics: " + ", ".join(FIGURES),
    }


def scenario_schema() -> dict[str, Any]:
    """The schema a scenario file validates against (durations and rates as strings with their
    patterns, gates as expressions over known figures)."""
    schema = Scenario.model_json_schema()
    schema["$defs"]["Gate"] = _gate_schema()
    return {"$schema": SCHEMA_DIALECT, **schema, "title": "notifychaos scenario"}


def scenario_schema_text() -> str:
    """The schema as the JSON text `notifychaos schema` prints and docs/scenario.schema.json
    holds."""
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"
