"""Fixtures for the mock tests: the real mock process (`python -m mocks CONFIG MANIFEST`), a
receiver for delivery reports, and an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mockkit import CONTROL, REPORT_PATH, Mocks, Receiver, receiver, running_mocks


@pytest.fixture(scope="module")
def reports() -> Iterator[Receiver]:
    """Receives Alibaba SmsReport pushes (at REPORT_PATH) and Twilio status callbacks."""
    with receiver() as server:
        yield server


@pytest.fixture(scope="module")
def mocks(tmp_path_factory: pytest.TempPathFactory, reports: Receiver) -> Iterator[Mocks]:
    """One mock process per test module, so modules do not see each other's traffic."""
    with running_mocks(tmp_path_factory.mktemp("mocks"), reports.url + REPORT_PATH) as served:
        yield served


@pytest.fixture
def fresh_mocks(tmp_path: Path, reports: Receiver) -> Iterator[Mocks]:
    """A mock process of the test's own, for tests that kill it."""
    with running_mocks(tmp_path, reports.url + REPORT_PATH) as served:
        yield served


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """A client with the run's token: control calls pass, and vendor calls show it masked."""
    with httpx.Client(timeout=5.0, headers=CONTROL) as http:
        yield http
