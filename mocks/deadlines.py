"""The mocks' deadlines: how long a connection may idle, a body take, and stopping wait."""

from __future__ import annotations

from aiohttp import web

IDLE_TIMEOUT = 30.0
"""Seconds a connection may stay idle, or sending half its headers, before it is closed (it is
aiohttp's keep-alive timeout: aiohttp closes a connection with no complete request after it);
once the headers are in, the body has READ_TIMEOUT."""

READ_TIMEOUT = 30.0
"""Seconds a request's body may take to arrive once its headers are in (a vendor's SMS request
is a few kilobytes, a canary's probe takes under 5 s, even through a slow link); a half-sent
request is then answered 408 and closed."""

READ_TIMEOUT_KEY = web.AppKey("read_timeout", float)
"""Where an app may hold a shorter body deadline than READ_TIMEOUT (tests of half-sent
requests)."""

LINGER = 2.0
"""Seconds the rest of a body is read (and dropped) after an early answer (408, 413), so that the
client sees the answer rather than a reset; aiohttp's default is 10 s."""

STOP_GRACE = 2.0
"""Seconds stopping waits for answers in flight (a latency fault may hold one for minutes)."""
