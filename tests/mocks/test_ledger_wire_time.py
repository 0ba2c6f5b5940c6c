"""The feed's and the primary's times on the wire: RFC 3339 in the bank's time zone with
milliseconds, the very text a datetime's isoformat gives, however they are built."""

from __future__ import annotations

import random

from mocks.bank import ms_time
from mocks.ledger import wire_time


def test_wire_times_are_the_datetimes_isoformat_to_the_millisecond() -> None:
    rng = random.Random(11)
    # Around now, the epoch, a leap day and the bank's midnight (16:00 UTC), and far ones.
    edges = [0, 999, 1000, -1, -1000, -1001, 1_709_222_399_999, 1_709_222_400_000,
             1_796_140_799_999, 1_796_140_800_000, 253_402_271_999_999]
    for ms in [*edges, *(rng.randrange(-10**12, 4 * 10**12) for _ in range(5000))]:
        assert wire_time(ms) == ms_time(ms).isoformat(timespec="milliseconds"), ms


def test_a_wire_time_reads_as_the_bank_s_local_time() -> None:
    assert wire_time(1_796_120_405_123) == "2026-12-01T18:20:05.123+08:00"
