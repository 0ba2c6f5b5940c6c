"""One-line descriptions of network failures for log lines and outbox rows."""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    # Timeouts stringify to "", which would make a useless log line.
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"
