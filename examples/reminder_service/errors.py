"""One-line descriptions of network failures for log lines and outbox rows."""

from __future__ import annotations

import errno

import aiohttp


def describe(exc: BaseException) -> str:
    # Timeouts stringify to "", and connect errors to a long repeat of the address.
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = errno.errorcode.get(exc.os_error.errno or 0, str(exc.os_error))
        return f"cannot connect ({code})"
    return f"{type(exc).__name__}: {exc}"
