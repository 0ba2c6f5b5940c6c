"""Fixtures the harness's tests share: a real Toxiproxy server per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.toxiproxy import ToxiproxyServer, find_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyServer]:
    """The real Toxiproxy server, started once for the module's tests."""
    running = ToxiproxyServer(find_server(), tmp_path_factory.mktemp("tp") / "toxiproxy.log")
    yield running
    running.stop()
