"""Streaks of trouble: when to alert, and when to skip a vendor (or the ledger's primary) for a
cool-down."""

from __future__ import annotations

import time
from collections.abc import Callable

THRESHOLD = 3


class FailureStreak:
    def __init__(self, threshold: int = THRESHOLD) -> None:
        self._threshold = threshold
        self.failures = 0

    def record_success(self) -> None:
        self.failures = 0

    def record_failure(self) -> bool:
        """Count a failure; True exactly once per streak, when it reaches the threshold."""
        self.failures += 1
        return self.failures == self._threshold

    @property
    def tripped(self) -> bool:
        return self.failures >= self._threshold


class Breaker:
    """A tripped streak opens the breaker for a cool-down; every further failure re-opens it.

    After the cool-down one caller gets a trial call while the breaker stays open for the
    others: its success closes the breaker, its failure re-opens it.
    """

    def __init__(
        self,
        threshold: int = THRESHOLD,
        cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.streak = FailureStreak(threshold)
        self._cooldown = cooldown
        self._clock = clock
        self._open_until = 0.0

    def allow(self) -> bool:
        if not self.streak.tripped:
            return True
        now = self._clock()
        if now < self._open_until:
            return False
        self._open_until = now + self._cooldown
        return True

    def record_success(self) -> None:
        self.streak.record_success()

    def record_failure(self) -> bool:
        """Count a failure; True exactly once per streak, when the breaker first opens."""
        first = self.streak.record_failure()
        if self.streak.tripped:
            self._open_until = self._clock() + self._cooldown
        return first


class QuietStreak:
    """Trouble that comes and goes (a replica drifting for a fifth of its records) is one streak
    until `quiet` seconds pass without it, so that it alerts once rather than per record."""

    def __init__(self, quiet: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._quiet = quiet
        self._clock = clock
        self._last: float | None = None

    def record(self) -> bool:
        """Count one occurrence; True when it starts a streak."""
        now = self._clock()
        starts = self._last is None or now - self._last >= self._quiet
        self._last = now
        return starts
