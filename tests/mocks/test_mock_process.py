"""The mock process itself: its manifest, its credentials, its shutdown, and a journal that
survives a crash."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
from mockkit import ROOT, Mocks, marker, twilio_send

from harness.journal import SendRecorded, read_journal


def test_manifest_names_every_mock_on_loopback(mocks: Mocks) -> None:
    manifest = mocks.manifest

    assert manifest.pid == mocks.process.pid
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", manifest.ledger_url)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/alerts", manifest.alerts_url)
    assert {name: v.kind for name, v in manifest.vendors.items()} == {
        "twilio": "twilio", "aliyun": "aliyun", "sns": "sns",
        "tencent": "tencent", "vonage": "vonage"}
    urls = [manifest.ledger_url, manifest.alerts_url.removesuffix("/alerts"),
            *(v.url for v in manifest.vendors.values())]
    assert len(set(urls)) == len(urls)


def test_twilio_credentials_have_twilio_shapes(mocks: Mocks) -> None:
    credentials = mocks.manifest.vendors["twilio"].credentials

    assert credentials.keys() == {"account_sid", "auth_token", "from"}
    assert re.fullmatch(r"AC[0-9a-f]{32}", credentials["account_sid"])
    assert re.fullmatch(r"[0-9a-f]{32}", credentials["auth_token"])
    assert re.fullmatch(r"\+\d{11}", credentials["from"])


def test_aliyun_credentials_have_alibaba_shapes(mocks: Mocks) -> None:
    credentials = mocks.manifest.vendors["aliyun"].credentials

    # The contract (§5): only the AccessKey; sign name and templates are the scenario's.
    assert credentials.keys() == {"access_key_id", "access_key_secret"}
    assert re.fullmatch(r"LTAI[0-9A-Za-z]{20}", credentials["access_key_id"])
    assert re.fullmatch(r"[0-9A-Za-z]{30}", credentials["access_key_secret"])


def test_sigterm_stops_the_process_cleanly(client: httpx.Client, fresh_mocks: Mocks) -> None:
    # A served request shows the process is past start-up (its signal handlers are installed).
    assert client.get(f"{fresh_mocks.manifest.ledger_url}/healthz").status_code == 200

    fresh_mocks.process.send_signal(signal.SIGTERM)

    assert fresh_mocks.process.wait(timeout=10) == 0


def test_send_record_survives_sigkill(client: httpx.Client, fresh_mocks: Mocks) -> None:
    text = f"还款提醒 ref:{marker()}"
    twilio = fresh_mocks.manifest.vendors["twilio"]
    form = {"To": "+8613912345678", "From": twilio.credentials["from"], "Body": text}
    sid = twilio_send(client, twilio, form).json()["sid"]

    fresh_mocks.process.kill()

    assert fresh_mocks.process.wait(timeout=10) == -signal.SIGKILL
    [send] = [s for s in read_journal(fresh_mocks.journal_dir).of(SendRecorded)
              if s.body == text]
    assert (send.message_id, send.to, send.vendor) == (sid, "+8613912345678", "twilio")


def test_wrong_arguments_print_usage_and_exit_2() -> None:
    result = subprocess.run([sys.executable, "-m", "mocks"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30, check=False)

    assert result.returncode == 2
    assert "usage: python -m mocks CONFIG.json MANIFEST.json" in result.stderr
