"""The one HTTP client a vendor mock makes its webhooks with (reports, replies): kept connections.

A session per webhook meant a new TCP connection per status callback (24 % of the mock
process under load, measured). One session per vendor, opened at the first webhook and closed
when the vendor's app stops, keeps its connections between webhooks.
"""

from __future__ import annotations

import aiohttp

from harness.errors import NotifyChaosError

WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=2)
"""Per webhook: a receiver that takes longer has the report fail (it is logged, never retried)."""

KEEP_IDLE = 1.0
"""Seconds a connection to a receiver is kept while idle. POST is not retried on a kept
connection the receiver has just closed, so ours must give up first: below the shortest
idle timeout of common servers (gunicorn's 2 s; uvicorn and Node 5 s, aiohttp 75 s). Under
load webhooks follow each other faster than that, so their connections stay in use."""


class WebhooksClosed(NotifyChaosError):
    """A webhook was asked for once its vendor had stopped."""


class Webhooks:
    """The lazily opened client session of one vendor mock's webhooks."""

    def __init__(self, vendor: str) -> None:
        self._vendor = vendor
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def session(self) -> aiohttp.ClientSession:
        """The session (opened at the first call, inside the running event loop)."""
        if self._closed:
            raise WebhooksClosed(f"vendor {self._vendor}: webhook after the mock stopped")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=WEBHOOK_TIMEOUT,
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEP_IDLE))
        return self._session

    async def close(self) -> None:
        """Close the session and its kept connections; later webhooks are refused."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
