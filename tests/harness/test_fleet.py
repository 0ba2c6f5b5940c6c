"""`notifychaos mocks up`: the fleet in the foreground, its manifest, and a clean Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from harness.processes import poll_until
from mocks.manifest import Manifest
from tests.conftest import ROOT


def test_mocks_up_serves_the_scenario_vendors_until_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "mocks", "up", "--state", str(tmp_path),
         "--scenario", str(ROOT / "scenarios" / "primary-vendor-outage.yaml")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        manifest_path = tmp_path / "mocks-manifest.json"
        assert poll_until(lambda: manifest_path.exists() or None, timeout=20)
        manifest = Manifest.model_validate_json(manifest_path.read_text())
        assert sorted(manifest.vendors) == ["aliyun", "twilio"]
        twilio = manifest.vendors["twilio"]
        sid, token = twilio.credentials["account_sid"], twilio.credentials["auth_token"]
        sent = httpx.post(f"{twilio.url}/2010-04-01/Accounts/{sid}/Messages.json",
                          auth=(sid, token), timeout=5,
                          data={"To": "+8613800000001", "From": "+15005550006", "Body": "hi"})
        assert sent.status_code == 201
        record = httpx.get(twilio.sends_url, timeout=5).json()
        assert [s["body"] for s in record["sends"]] == ["hi"]
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert f"twilio (twilio)   {twilio.url}" in stdout
    assert f"account_sid = {sid}" in stdout
    assert (tmp_path / "journal" / "mocks.jsonl").read_text().count('"send.recorded"') == 1
