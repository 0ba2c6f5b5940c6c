"""Status callbacks reuse their TCP connections (one client session per vendor), and the mock
closes that session when it stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from mockkit import running_mocks, twilio_send, wait_until

SENDS = 10  # each makes two callbacks: sent, then delivered


class KeepAliveReceiver:
    """An HTTP/1.1 server on 127.0.0.1 that keeps connections open, answers 200 to every POST
    and counts the TCP connections it accepted and the requests it got."""

    def __init__(self) -> None:
        self.connections = self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive unless the client closes

            def setup(self) -> None:  # once per accepted connection
                super().setup()
                with receiver._lock:
                    receiver.connections += 1

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def counts(self) -> tuple[int, int]:
        """(connections accepted, requests received) so far."""
        with self._lock:
            return self.connections, self.requests

    @contextmanager
    def running(self) -> Iterator[KeepAliveReceiver]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)


def test_status_callbacks_share_connections_and_the_session_closes_at_stop(
        tmp_path: Path, client: httpx.Client) -> None:
    with KeepAliveReceiver().running() as receiver:
        with running_mocks(tmp_path, receiver.url + "/unused") as mocks:
            twilio = mocks.manifest.vendors["twilio"]
            for n in range(SENDS):
                sent = twilio_send(client, twilio, {
                    "To": f"+861380000{n:04d}", "From": "+15005550006", "Body": f"ref:{n}",
                    "StatusCallback": receiver.url + "/status"})
                assert sent.status_code == 201, sent.text
            wait_until(lambda: receiver.counts()[1] == 2 * SENDS or None,
                       f"{2 * SENDS} status callbacks", timeout=30)
        connections, requests = receiver.counts()
    # A session per callback made one connection per callback (20). Kept connections are
    # dropped after KEEP_IDLE seconds idle, so a stalled machine may need a few more than one;
    # half the callbacks is a wide margin.
    assert requests == 2 * SENDS
    assert connections <= SENDS // 2, connections
    log = (tmp_path / "mocks.log").read_text(encoding="utf-8", errors="replace")
    assert "Unclosed" not in log, log
