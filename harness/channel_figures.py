"""The channel mix: by which channel the reminders delivered correctly were delivered, counted
(overall and per fault step) and as shares of those delivered outside every fault.

Rules: a reminder delivered correctly counts for the channel of its deciding copy (always one
the scenario allows); every allowed channel is present, with 0 when it delivered none. A share
is None for a channel the scenario does not allow, and for every channel when no reminder was
delivered correctly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.judging import Judged
from mocks.manifest import CHANNELS, Channel


def channel_mix(reminders: Iterable[Judged], allowed: Sequence[Channel]) -> dict[str, int]:
    """How many of `reminders` each allowed channel delivered correctly."""
    mix: dict[str, int] = dict.fromkeys(allowed, 0)
    for judged in reminders:
        if judged.channel is not None:
            mix[judged.channel] += 1
    return mix


def channel_shares(reminders: Sequence[Judged], allowed: Sequence[Channel]
                   ) -> dict[Channel, float | None]:
    """The share of `reminders` delivered correctly that each channel delivered."""
    mix = channel_mix(reminders, allowed)
    delivered = sum(mix.values())
    return {channel: round(mix[channel] / delivered, 6)
            if delivered and channel in allowed else None for channel in CHANNELS}
