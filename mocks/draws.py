"""Random draws keyed by what they are about, so the same seed gives the same fates in any order.

A mock never asks a shared generator "the next number": arrival order differs between reruns
(the notifier's workers, the network, the load), so such a draw gives a message another
message's fate. It asks `draw(seed, what, ...)` instead, a pure function of the seed and the
key (blake2b, not Python's salted `hash`), and counts repeats of one key with `Attempts`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Hashable

_UNIT = 2.0 ** -53


def draw(seed: int, *key: object) -> float:
    """A number in [0, 1) fixed by `seed` and `key` alone (each part taken as its `str`)."""
    digest = hashlib.blake2b(digest_size=8)
    for part in (seed, *key):
        text = str(part).encode("utf-8", "surrogatepass")
        # Each part with its length first: ("ab", "c") and ("a", "bc") are different keys.
        digest.update(len(text).to_bytes(8, "big"))
        digest.update(text)
    # The top 53 bits: every value a float can hold exactly, spread evenly over [0, 1).
    return (int.from_bytes(digest.digest(), "big") >> 11) * _UNIT


class Attempts:
    """How often each key came up before: the attempt number of a repeated send (0 first)."""

    def __init__(self) -> None:
        self._seen: Counter[Hashable] = Counter()

    def next(self, key: Hashable) -> int:
        """The number of earlier calls with `key`; counts this one."""
        earlier = self._seen[key]
        self._seen[key] = earlier + 1
        return earlier
