"""The calendar the notifier schedules the bank's staged reminders by: the wall clock, or the
compressed month a rehearsal gives it (NOTIFYCHAOS_CLOCK_EPOCH, _SPEED, _START)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class Calendar:
    """A calendar whose time is `start + (now - epoch) * speed`: the wall clock is epoch 0,
    speed 1, start 1970-01-01T00:00Z."""

    epoch: float
    speed: float
    start: datetime

    def real(self, calendar: datetime) -> float:
        """The Unix time at which this calendar reads `calendar` (inverting the above)."""
        return self.epoch + (calendar - self.start).total_seconds() / self.speed

    def stage_time(self, due_date: date, days_before: int, at: time, zone: tzinfo) -> datetime:
        """When a reminder `days_before` days before `due_date` at local time `at` in `zone`
        falls due, as a real (Unix-time) moment in `zone`."""
        local = datetime.combine(due_date - timedelta(days=days_before), at, zone)
        return datetime.fromtimestamp(self.real(local), zone)


WALL = Calendar(epoch=0.0, speed=1.0, start=datetime(1970, 1, 1, tzinfo=UTC))
"""The wall clock: a production notifier's calendar."""
