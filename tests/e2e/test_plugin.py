"""The pytest plugin on a real run: the `rehearse` fixture runs a shipped scenario end to end
into the test's tmp_path, and the reference notifier keeps every reminder through the outage."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.pytest_plugin import Rehearser
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

# Twilio down from 4 s to 14 s of an 18 s load: the outage and its recovery fit in the run,
# and its ~72 reminders leave room above the 50 the test asks for.
SHORT = {"duration": "18s", "timeline": [{"at": "4s", "for": "10s", "fault": "proxy.down",
                                          "link": "vendors.twilio"}]}


def test_the_reference_notifier_keeps_every_reminder_through_the_plugin(
        rehearse: Rehearser, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("resilience") is not None
    result = rehearse(ROOT / "scenarios" / "phone-changes-during-outage.yaml", overrides=SHORT)
    assert result.run_dir.parent == tmp_path and result.report_html.is_file()
    assert result.scorecard.owed >= 50
    assert result.scorecard.continuity >= 0.99
    assert result.scorecard.outcomes.get("wrong_recipient", 0) == 0
    assert result.passed
