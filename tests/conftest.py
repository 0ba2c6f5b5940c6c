"""Shared fixtures: paths of the project and of its demo scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo_scenario() -> Path:
    """The demo scenario file the README runs."""
    return ROOT / "scenarios" / "primary-vendor-outage.yaml"
