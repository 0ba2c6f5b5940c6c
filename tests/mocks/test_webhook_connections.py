"""Status callbacks reuse their TCP connections (one webhook client per vendor), and the mock
closes its connections when it stops."""

from __future__ import annotations

from pathlib import Path

import httpx
from mockkit import Receiver, running_mocks, twilio_send

from mocks.vendor import IN_FLIGHT

SENDS = 4 * IN_FLIGHT  # each makes two callbacks: sent, then delivered


def test_status_callbacks_share_connections_and_the_session_closes_at_stop(
        tmp_path: Path, client: httpx.Client) -> None:
    receiver = Receiver(keep_alive=True).start()
    try:
        with running_mocks(tmp_path, receiver.url + "/unused") as mocks:
            twilio = mocks.manifest.vendors["twilio"]
            for n in range(SENDS):
                sent = twilio_send(client, twilio, {
                    "To": f"+861380000{n:04d}", "From": "+15005550006", "Body": f"ref:{n}",
                    "StatusCallback": receiver.url + "/status"})
                assert sent.status_code == 201, sent.text
            receiver.wait_for("/status", 2 * SENDS, timeout=30)
        connections, requests = receiver.connections, len(receiver.on("/status"))
    finally:
        receiver.stop()
    # A session per callback made one connection per callback (128). The reports go
    # IN_FLIGHT at a time, each sender on a connection of its own, kept between callbacks;
    # kept connections are dropped after KEEP_IDLE seconds idle, so a stalled machine may need
    # a second round of them: twice IN_FLIGHT (a quarter of the callbacks) is a wide margin.
    assert requests == 2 * SENDS
    assert connections <= 2 * IN_FLIGHT, connections
    log = (tmp_path / "mocks.log").read_text(encoding="utf-8", errors="replace")
    assert "Unclosed" not in log, log
