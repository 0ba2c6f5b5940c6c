"""The alert sink: every alert the notifier posts is answered 202 and journaled with its time."""

from __future__ import annotations

import time

import httpx
from mockkit import Mocks, marker

from harness.journal import AlertReceived, read_journal


def alerts(mocks: Mocks) -> list[AlertReceived]:
    return read_journal(mocks.journal_dir).of(AlertReceived)


def test_json_alert_is_202_and_journaled(client: httpx.Client, mocks: Mocks) -> None:
    alert = {"severity": "critical", "summary": f"vendor twilio failing {marker()}",
             "source": "reminder-service"}
    posted_at = time.time()

    response = client.post(mocks.manifest.alerts_url, json=alert)

    assert response.status_code == 202
    [event] = [a for a in alerts(mocks) if a.body == alert]
    assert event.source == "mocks"
    assert posted_at - 1 <= event.t <= time.time()


def test_text_alert_is_kept_as_text(client: httpx.Client, mocks: Mocks) -> None:
    text = f"vendor aliyun failing {marker()}"

    response = client.post(mocks.manifest.alerts_url, content=text.encode())

    assert response.status_code == 202
    assert [a.body for a in alerts(mocks) if a.body == text] == [text]
