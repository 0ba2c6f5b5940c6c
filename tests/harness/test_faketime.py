"""libfaketime's speed-up for a target that cannot read the clock's variables: a real process,
started as the harness starts a target, reads the compressed calendar (in any time zone) at each
of its starts, and its clock runs at the month's speed."""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from harness import clock as clock_module
from harness.clock import Clock, faketime_library, with_clock
from harness.errors import StartupError
from harness.scenario import Month, Target
from harness.target import AddressBook, Layers, spawn_target

MONTH = Month(start=date(2026, 12, 1), days=30, faketime=True)
SPEED = 1000.0
MIDNIGHT = datetime(2026, 12, 1, tzinfo=UTC).timestamp()

# What the target sees: its clock, and the kernel's real uptime around a busy second of its own
# (libfaketime fakes every clock call and scales sleeps, but not /proc/uptime).
PROBE = """\
import json, time
def uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])
seen, real = time.time(), uptime()
while uptime() - real < 0.3:
    pass
print(json.dumps({"seen": seen, "fake": time.time() - seen, "real": uptime() - real,
                  "zone": time.strftime("%Z")}), flush=True)
"""


def _library() -> str:
    try:
        return faketime_library()
    except StartupError:
        if shutil.which("apt-get") is None:
            pytest.skip("libfaketime is not installed and there is no apt-get to install it")
        pytest.fail("libfaketime is not installed: run ./dev setup, which installs Debian's "
                    "faketime")


def _probe(clock: Clock, log: Path) -> tuple[float, float, dict[str, object]]:
    """Start the probe as a target under `clock`'s libfaketime; its report, and the real
    moments just before it started and once it ended."""
    target = Target(command=[sys.executable, "-c", PROBE], health="tcp://127.0.0.1:1",
                    env=with_clock({"TZ": "Asia/Shanghai"}, MONTH))
    book = AddressBook(Layers(clock.values()))
    before = time.time()
    process = spawn_target(target, book, log)
    assert process.wait(60.0) == 0, log.read_text()
    after = time.time()
    return before, after, json.loads(log.read_text().strip().splitlines()[-1])


def _calendar(clock: Clock, t: float) -> float:
    return MIDNIGHT + (t - clock.epoch) * clock.speed


def test_the_target_reads_the_compressed_calendar_at_each_start(tmp_path: Path) -> None:
    _library()
    clock = Clock(epoch=time.time() + 1.0, speed=SPEED, start=MONTH.start)
    for start in range(2):  # a restart is told the clock anew
        before, after, seen = _probe(clock, tmp_path / f"probe-{start}.log")
        # Between the calendar times of its start and its end (a second's rounding aside),
        # and in Unix seconds whatever its time zone.
        assert _calendar(clock, before) - 1.0 <= float(str(seen["seen"])) \
            <= _calendar(clock, after) + 1.0, (before, after, seen)
        assert seen["zone"] == "CST"
        # Its clock ran the month's speed over a real 0.3 s (the uptime's 10 ms steps aside).
        ratio = float(str(seen["fake"])) / float(str(seen["real"]))
        assert 0.8 * SPEED <= ratio <= 1.2 * SPEED, seen


def test_without_libfaketime_the_start_fails_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setattr(clock_module, "FAKETIME_LIBRARIES", (str(tmp_path / "none.so"),))
    with pytest.raises(StartupError, match=r"reminders.month.faketime needs libfaketime, found "
                       r"in none of .*none.so \(Debian: apt-get install faketime\)"):
        _probe(Clock(epoch=time.time(), speed=SPEED, start=MONTH.start), tmp_path / "p.log")


def test_only_a_month_with_faketime_preloads_it() -> None:
    plain = with_clock({"A": "1"}, Month(start=date(2026, 12, 1)))
    assert "LD_PRELOAD" not in plain and plain["A"] == "1"
    faked = with_clock({"FAKETIME_FMT": "%s", "LD_PRELOAD": "/mine.so"}, MONTH)
    assert faked["LD_PRELOAD"] == "/mine.so" and faked["FAKETIME"] == "{clock.faketime}"
