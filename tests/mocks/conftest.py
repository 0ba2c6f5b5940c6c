"""Fixtures for the mock tests: the real mock process (`python -m mocks CONFIG MANIFEST`), a
receiver for delivery reports, and an HTTP client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from mockkit import (
    REPORT_PATH,
    ROOT,
    SIGN_NAME,
    TEMPLATES,
    WINDOW,
    Mocks,
    Receiver,
    receiver,
    wait_until,
)

from mocks.handsets import HandsetConfig
from mocks.manifest import Manifest, MocksConfig, VendorConfig


def _log_tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""


@contextmanager
def running_mocks(workdir: Path, report_url: str, *, inbound_url: str | None = None,
                  handsets: HandsetConfig | None = None) -> Iterator[Mocks]:
    """Write a MocksConfig, start the mock process, wait for its manifest; stop it afterwards."""
    journal_dir = workdir / "journal"
    config = MocksConfig(
        seed=7, window=WINDOW, journal_dir=str(journal_dir),
        handsets=handsets or HandsetConfig(),
        vendors={
            "twilio": VendorConfig(kind="twilio", inbound_url=inbound_url),
            "aliyun": VendorConfig(kind="aliyun", sign_name=SIGN_NAME, templates=TEMPLATES,
                                   report_url=report_url, inbound_url=inbound_url),
            "sns": VendorConfig(kind="sns"),
            "vonage": VendorConfig(kind="vonage", report_url=report_url, inbound_url=inbound_url),
            "tencent": VendorConfig(kind="tencent", sign_name=SIGN_NAME,
                                    templates={"1234567": "尊敬的{1}，还款{2}元，ref:{3}"},
                                    report_url=report_url, inbound_url=inbound_url),
        })
    config_path, manifest_path = workdir / "mocks.json", workdir / "manifest.json"
    config_path.write_text(config.model_dump_json(), encoding="utf-8")
    log = workdir / "mocks.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mocks", str(config_path), str(manifest_path)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        def manifest_written() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"mock process exited with {process.returncode}:\n{_log_tail(log)}")
            return manifest_path.exists()

        wait_until(manifest_written, "the mock process's manifest", timeout=15)
        manifest = Manifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
        yield Mocks(manifest, journal_dir, process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


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
    with httpx.Client(timeout=5.0) as http:
        yield http
