"""`notifychaos mocks up`: the fleet in the foreground, its manifest (owner-only: it holds the
credentials and the token the control APIs want), and a clean Ctrl-C."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from harness.processes import poll_until
from harness.scenario import load_scenario
from mocks.manifest import TOKEN_HEADER, Manifest
from tests.conftest import ROOT


@contextmanager
def mocks_up(state: Path, scenario: str) -> Iterator[tuple[Manifest, list[str]]]:
    """`notifychaos mocks up` of scenarios/`scenario` for the block, then Ctrl-C: the list
    holds what it printed once it has stopped (with exit code 0, or the test fails)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "mocks", "up", "--state", str(state),
         "--scenario", str(ROOT / "scenarios" / scenario)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed: list[str] = []
    try:
        manifest_path = state / "mocks-manifest.json"
        assert poll_until(lambda: manifest_path.exists() or None, timeout=20)
        yield Manifest.model_validate_json(manifest_path.read_text()), printed
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    printed.append(stdout)


def test_mocks_up_serves_the_scenario_vendors_and_channels_until_ctrl_c(tmp_path: Path) -> None:
    with mocks_up(tmp_path, "compliance-template-rejected.yaml") as (manifest, printed):
        manifest_path = tmp_path / "mocks-manifest.json"
        assert sorted(manifest.vendors) == ["aliyun", "twilio"]
        assert sorted(manifest.channels) == ["email", "push"]
        twilio = manifest.vendors["twilio"]
        sid, token = twilio.credentials["account_sid"], twilio.credentials["auth_token"]
        sent = httpx.post(f"{twilio.url}/2010-04-01/Accounts/{sid}/Messages.json",
                          auth=(sid, token), timeout=5,
                          data={"To": "+8613800000001", "From": "+15005550006", "Body": "hi"})
        assert sent.status_code == 201
        assert httpx.get(twilio.sends_url, timeout=5).status_code == 401
        record = httpx.get(twilio.sends_url, timeout=5,
                           headers={TOKEN_HEADER: manifest.token}).json()
        assert [s["body"] for s in record["sends"]] == ["hi"]
        assert stat.S_IMODE(manifest_path.stat().st_mode) == 0o600
    [stdout] = printed
    assert f"twilio (twilio)   {twilio.url}" in stdout
    assert f"account_sid = {sid}" in stdout
    assert f"email   {manifest.channels['email'].url}" in stdout
    assert f"project = {manifest.channels['push'].values['project']}" in stdout
    assert f"token    {manifest.token}   (header {TOKEN_HEADER}" in stdout
    assert (tmp_path / "journal" / "mocks.jsonl").read_text().count('"send.recorded"') == 1


def test_mocks_up_of_a_staged_month_starts_its_calendar_and_says_the_notifier_s_clock(
        tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "repayment-calendar.yaml")
    assert scenario.reminders.month is not None
    before = time.time()
    with mocks_up(tmp_path, "repayment-calendar.yaml") as (manifest, printed):
        ready = time.time()
        # A staged ledger not told its epoch answers 409: this one was told as it came up.
        ticked = httpx.post(f"{manifest.ledger_url}/admin/ticks", timeout=5,
                            headers={TOKEN_HEADER: manifest.token})
        assert ticked.status_code == 201, ticked.text
        entries = httpx.get(f"{manifest.ledger_url}/v1/reminders/changes", timeout=5,
                            headers={TOKEN_HEADER: manifest.token}).json()["changes"]
    assert [(e["stage"]["days_before"], e["remind_at"]) for e in entries] == [
        (3, None), (1, None), (0, None)]
    assert entries[0]["installment"]["due_date"].startswith("2030-03-")
    [clock] = [line.split() for line in printed[0].splitlines() if line.startswith("clock ")]
    told = dict(word.split("=", 1) for word in clock[1:4])
    assert before <= float(told["NOTIFYCHAOS_CLOCK_EPOCH"]) <= ready
    assert float(told["NOTIFYCHAOS_CLOCK_SPEED"]) == pytest.approx(
        scenario.reminders.month.speed(scenario.duration))
    assert told["NOTIFYCHAOS_CLOCK_START"] == "2030-03-01T00:00:00Z"
