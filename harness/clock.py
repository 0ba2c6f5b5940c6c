"""The compressed calendar of a run with `reminders.month`: when its month begins (the epoch),
how fast it runs, and how the target is told (environment variables and `{clock.*}`, or
libfaketime's speed-up for a target that cannot read them) and, with stages, the ledger."""

from __future__ import annotations

import glob
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx

from harness.errors import StartupError
from harness.load_shapes import DAY
from harness.scenario import Month, Scenario
from harness.scorecard import Calendar
from mocks.bank import Staging
from mocks.manifest import TOKEN_HEADER, Manifest

CURVE_ENV = "NOTIFYCHAOS_CURVE"
"""The environment variable that gives Locust a paced run's curve (load_shapes.Curve JSON)."""

PARTS_ENV = "NOTIFYCHAOS_CURVE_PARTS"
"""How many parts the curve is cut into, one per Locust worker (absent: one process)."""

EPOCH_ENV = "NOTIFYCHAOS_CLOCK_EPOCH"
"""The clock's epoch, for the target and for Locust, which paces its ticks from it."""

ENV = {EPOCH_ENV: "{clock.epoch}", "NOTIFYCHAOS_CLOCK_SPEED": "{clock.speed}",
       "NOTIFYCHAOS_CLOCK_START": "{clock.start}"}
"""What a target of a month scenario gets in its environment (unless its `env` sets them):
the calendar's time is START + (now - EPOCH) * SPEED, for now after EPOCH."""

FAKETIME_ENV = {"LD_PRELOAD": "{clock.faketime_library}", "FAKETIME": "{clock.faketime}",
                "FAKETIME_FMT": "%s"}
"""What a target with `reminders.month.faketime` gets too: libfaketime preloaded, its clock
given in Unix seconds (no time zone to read it in) with the speed-up."""

FAKETIME_LIBRARIES = ("/usr/lib/*/faketime/libfaketimeMT.so.1",
                      "/usr/local/lib/faketime/libfaketimeMT.so.1")
"""Where Debian's `faketime` package (and a source build) put libfaketime, the variant that
is safe in threaded programs."""


@dataclass(frozen=True)
class Clock:
    """A month compressed `speed` times, beginning at Unix time `epoch` (the start of load)
    on the calendar day `start` at midnight, UTC."""

    epoch: float
    speed: float
    start: date

    @classmethod
    def of(cls, month: Month, duration: float, epoch: float) -> Clock:
        """The clock of `month` mapped onto `duration` seconds of load from `epoch`."""
        return cls(epoch=epoch, speed=month.speed(duration), start=month.start)

    def values(self, now: Callable[[], float] = time.time) -> Mapping[str, str]:
        """The `{clock.*}` placeholders: the epoch (Unix seconds), the speed (calendar
        seconds per second) and the start (ISO 8601, UTC); and libfaketime's, whose
        `{clock.faketime}` is made when it is rendered, for a process that starts then."""
        return _Placeholders(self, now)

    def faketime(self, now: float) -> str:
        """libfaketime's FAKETIME (with FAKETIME_FMT=%s) for a process starting at `now`: its
        clock starts at the calendar time of `now` and runs `speed` times faster from there,
        as libfaketime counts from the moment the process starts."""
        midnight = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        calendar = midnight.timestamp() + (now - self.epoch) * self.speed
        return f"@{calendar:.0f} x{self.speed:.10g}"

    def calendar(self, t: float) -> datetime:
        """The calendar time `t` seconds after the epoch."""
        midnight = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        return midnight + timedelta(seconds=t * self.speed)


class _Placeholders(Mapping[str, str]):
    """A clock's placeholders, read when a target's command is rendered (at each start)."""

    _NAMES = ("clock.epoch", "clock.speed", "clock.start", "clock.faketime",
              "clock.faketime_library")

    def __init__(self, clock: Clock, now: Callable[[], float]) -> None:
        self._clock, self._now = clock, now

    def __getitem__(self, name: str) -> str:
        clock = self._clock
        if name == "clock.epoch":
            return f"{clock.epoch:.3f}"
        if name == "clock.speed":
            return f"{clock.speed:.10g}"
        if name == "clock.start":
            return f"{clock.start.isoformat()}T00:00:00Z"
        if name == "clock.faketime":
            return clock.faketime(self._now())
        if name == "clock.faketime_library":
            return faketime_library()
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._NAMES)

    def __len__(self) -> int:
        return len(self._NAMES)


def faketime_library() -> str:
    """The path of libfaketime on this machine; StartupError if it is not installed."""
    for pattern in FAKETIME_LIBRARIES:
        if found := sorted(glob.glob(pattern)):
            return found[0]
    raise StartupError("target", "reminders.month.faketime needs libfaketime, found in none "
                       f"of {', '.join(FAKETIME_LIBRARIES)} (Debian: apt-get install faketime)")


def with_clock(env: Mapping[str, str], month: Month) -> dict[str, str]:
    """A target's `env` with the clock's variables added (its own values win)."""
    return {**ENV, **(FAKETIME_ENV if month.faketime else {}), **env}


def clocked(scenario: Scenario) -> Scenario:
    """`scenario` with the clock's variables in its target's environment and in its version
    B's (as it was without a month)."""
    month = scenario.reminders.month
    if month is None:
        return scenario
    target = scenario.target.model_copy(update={"env": with_clock(scenario.target.env, month)})
    upgrade = scenario.upgrade
    if upgrade is not None:
        upgrade = upgrade.model_copy(update={"target": upgrade.target.model_copy(
            update={"env": with_clock(upgrade.target.env, month)})})
    return scenario.model_copy(update={"target": target, "upgrade": upgrade})


def staging(scenario: Scenario, epoch: float | None = None) -> Staging | None:
    """The bank's own reminder calendar for the ledger, from `reminders.month.stages`; its
    epoch, unless known already, is told once the run fixes it (`tell_ledger`)."""
    month = scenario.reminders.month
    if month is None or month.stages is None:
        return None
    return Staging(start=month.start, speed=month.speed(scenario.duration),
                   before_days=tuple(month.stages.before_days), at=month.stages.at, epoch=epoch)


def tell_ledger(manifest: Manifest, clock: Clock, timeout: float = 5.0) -> None:
    """Give a staged ledger the month's epoch, before any tick needs it; StartupError if it
    does not take it."""
    try:
        response = httpx.put(f"{manifest.ledger_url}/admin/clock", json={"epoch": clock.epoch},
                             headers={TOKEN_HEADER: manifest.token}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise StartupError("mocks", f"the ledger was not told the month's epoch: {exc}") from None
    if response.status_code != 200:
        raise StartupError("mocks", "the ledger refused the month's epoch: HTTP "
                           f"{response.status_code} {response.text[:200]}")


def pacing_env(scenario: Scenario, epoch: float | None) -> dict[str, str]:
    """What Locust needs to pace a `scenario.paced` run: its curve, the epoch the ticks are
    timed from (None: from Locust's own start) and, with workers, into how many parts they
    cut it; nothing for a steady run."""
    if not scenario.paced:
        return {}
    env = {CURVE_ENV: scenario.curve().to_json()}
    if epoch is not None:
        env[EPOCH_ENV] = f"{epoch:.6f}"
    if scenario.load.workers:
        env[PARTS_ENV] = str(scenario.load.workers)
    return env


def run_calendar(scenario: Scenario) -> Calendar | None:
    """The calendar a scorecard counts a month scenario's days by (its load starts at the
    month's epoch); None without a month."""
    month = scenario.reminders.month
    if month is None:
        return None
    clock = Clock.of(month, scenario.duration, 0.0)
    return Calendar(start=clock.calendar(0.0), speed=clock.speed)


def describe_pacing(scenario: Scenario) -> str:
    """How a paced run's load goes, for the run's progress line: `295 reminders, month_end,
    Dec 1 to Dec 31 2026 (a day every 1.61s)` (with stages, `120 installments of 3 reminders
    (T-3, T-1, on the day at 09:00), ...`); empty for a steady run."""
    if not scenario.paced:
        return ""
    month = scenario.reminders.month
    ticks, kind = scenario.curve().ticks, scenario.reminders.shape.kind
    stages = None if month is None else month.stages
    if stages is None:
        told = f"{ticks} reminders, {kind}"
    else:
        days = ", ".join(f"T-{n}" if n else "on the day" for n in stages.before_days)
        told = (f"{ticks} installments of {len(stages.before_days)} reminders ({days} at "
                f"{stages.at}), {kind}")
    if month is None:
        return told
    clock = Clock.of(month, scenario.duration, 0.0)
    last = clock.calendar(scenario.duration - 1e-6)
    return (f"{told}, {month.start:%b} {month.start.day} to {last:%b} {last.day} {last.year} "
            f"(a day every {DAY / clock.speed:.3g}s)")
