"""Shared fixtures: paths of the project and of its demo scenario; hypothesis made repeatable."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent

# The same examples on every machine and every run (CI must not find a new one by luck), no
# example database left in the checkout, and no per-example deadline on a loaded 2-core machine.
settings.register_profile("notifychaos", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("notifychaos")


@pytest.fixture
def demo_scenario() -> Path:
    """The demo scenario file the README runs."""
    return ROOT / "scenarios" / "primary-vendor-outage.yaml"
