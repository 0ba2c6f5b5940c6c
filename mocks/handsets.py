"""Handsets and carriers: what happens to a message once a vendor accepted it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.durations import Duration
from mocks.draws import draw

Arrival = Literal["delivered", "spam", "absent"]
"""Delivered to the inbox, delivered into the spam folder, or never (the phone is off)."""


class SpamRules(BaseModel):
    """User-side spam filtering: a message matching a rule lands in the spam folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    senders: list[str] = []
    content: list[str] = Field(default=[], description="regular expressions over the text")


class HandsetConfig(BaseModel):
    """How the borrowers' phones behave in this run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    absent: float = Field(default=0.0, ge=0, le=1,
                          description="fraction of messages whose recipient's phone is off")
    spam: SpamRules = SpamRules()
    stop: float = Field(default=0.0, ge=0, le=1, description="fraction of borrowers who reply "
                        "STOP to a message in their inbox (once; they are then opted out)")
    stop_after: Duration = Field(default=2.0, description="time between a message arriving "
                                 "and its reader's STOP reply")


class Handsets:
    """Decides, per message, whether it reaches the inbox, the spam folder, or nobody.

    The draws are keyed (`mocks.draws`): a phone is off for a message by that message's key,
    and whether a borrower replies STOP by their number alone, so reruns agree in any order.
    """

    def __init__(self, config: HandsetConfig, seed: int) -> None:
        self._absent = config.absent
        self._senders = set(config.spam.senders)
        self._content = [re.compile(rule) for rule in config.spam.content]
        self._stop = config.stop
        self.stop_after = config.stop_after
        self._seed = seed
        self._opted_out: set[str] = set()

    def receive(self, to: str, sender: str, body: str, key: tuple[object, ...]) -> Arrival:
        """Where the message to `to` ends up; `key` names this one message (the vendor's
        send key: vendor, recipient, body, attempt)."""
        # A draw is pure: with no chance, it need not be made (it costs on every send).
        if self._absent > 0 and draw(self._seed, "handsets", "absent", *key) < self._absent:
            return "absent"
        if sender in self._senders or any(rule.search(body) for rule in self._content):
            return "spam"
        return "delivered"

    def replies_stop(self, to: str) -> bool:
        """Whether the borrower at `to` answers the message in their inbox with STOP (once):
        the borrowers who do are a fraction `stop` of the numbers, drawn by number."""
        if (self._stop <= 0 or to in self._opted_out
                or draw(self._seed, "handsets", "stop", to) >= self._stop):
            return False
        self._opted_out.add(to)
        return True
