"""The channel mix: by which channel the reminders delivered correctly were delivered, counted
(overall and per fault step) and as shares of those delivered outside every fault.

Rules: a reminder delivered correctly counts for the channel of its deciding copy (always one
the scenario allows); every allowed channel is present, with 0 when it delivered none. A share
is None for a channel the scenario does not allow, and for every channel when no reminder was
delivered correctly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mocks.manifest import CHANNELS, Channel


def no_mix(allowed: Sequence[Channel]) -> dict[str, int]:
    """A channel mix before any reminder is counted: every allowed channel at 0."""
    return dict.fromkeys(allowed, 0)


def count(mix: dict[str, int], channel: Channel | None) -> None:
    """Count in `mix` a reminder delivered correctly by `channel` (None: not delivered)."""
    if channel is not None:
        mix[channel] += 1


def channel_shares(mix: Mapping[str, int], allowed: Sequence[Channel]
                   ) -> dict[Channel, float | None]:
    """The share of the reminders delivered correctly that each channel delivered, given how
    many each delivered (`mix`, as `count` counts them)."""
    delivered = sum(mix.values())
    return {channel: round(mix[channel] / delivered, 6)
            if delivered and channel in allowed else None for channel in CHANNELS}
