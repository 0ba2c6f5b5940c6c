"""The channels the resilient notifier falls back to after SMS (push, e-mail): what a send on one
of them gives back, and the small protocol their clients share."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .reminder import Reminder


class Verdict(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    """A temporary failure (greylisting, a quota, an outage): the same channel, later."""
    GIVE_UP = "give-up"
    """No retry on this channel will do (a stale token, a rejected address), or one could
    duplicate the message (its answer never came): the next channel, now."""


@dataclass(frozen=True)
class ChannelResult:
    verdict: Verdict
    message_id: str | None = None
    detail: str = ""
    """Why it failed, or for a send counted as sent without its answer, why."""
    recipient: bool = False
    """The failure is this borrower's (a stale token, an unknown mailbox), not the channel's."""


class FallbackChannel(Protocol):
    @property
    def name(self) -> str:
        """The channel's name: `push` or `email` (the outbox's vendor column says it)."""
        ...

    def reaches(self, reminder: Reminder) -> bool:
        """Whether the borrower can be reached this way (has a device token, an address)."""
        ...

    async def send(self, reminder: Reminder) -> ChannelResult: ...
