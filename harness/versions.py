"""The versions a run records at its start: notifychaos, Locust and Python."""

from __future__ import annotations

import platform
from importlib import metadata


def _installed(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_versions() -> dict[str, str]:
    """What this harness runs with; Locust's from its installed metadata, since importing
    Locust monkey-patches the process (it runs in its own)."""
    return {"notifychaos": _installed("notifychaos"), "locust": _installed("locust"),
            "python": platform.python_version()}
