"""Network failures: one-line descriptions for log lines and outbox rows, and which leave a
send's outcome unknown."""

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


def outcome_unknown(exc: BaseException) -> bool:
    """Whether the request may have reached the vendor: anything but failing to connect."""
    return not isinstance(exc, aiohttp.ClientConnectorError)


class LookupFailed(Exception):
    """A vendor could not say whether it took a message."""
