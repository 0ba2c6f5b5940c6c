"""The backlog over time: the longest blackout, recovery after a fault, and the series."""

from __future__ import annotations

import pytest

from harness.continuity import score
from harness.journal import Event
from tests.harness.journals import journal, owed, scenario, sent, step


def every_second(count: int, *, start: int = 0) -> list[tuple[str, int]]:
    return [(f"R{i:07d}", i) for i in range(start, start + count)]


def test_the_blackout_is_measured_on_on_time_deliveries_not_on_sends() -> None:
    # 41 % arrive on time; then every message has a wrong amount, still one send a second.
    events: list[Event] = []
    for ref, at in every_second(100):
        events += [owed(ref, at), sent(ref, at, arrive=0.5,
                                       amount="100.00" if at <= 40 else "1.00")]
    card = score(journal(*events, end=120))
    assert card.outcomes["wrong_content"] == 59
    # From the first reminder after the last on-time one (41 s) until the last window closed.
    assert card.longest_blackout == pytest.approx(109 - 41)


def test_late_deliveries_do_not_end_a_blackout() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
                         owed("BBBBBBBB", 10), owed("CCCCCCCC", 12),
                         sent("BBBBBBBB", 12, arrive=13), sent("CCCCCCCC", 13),
                         owed("DDDDDDDD", 40), sent("DDDDDDDD", 41)))
    # B waits from 10 s; C arrives on time at 13 s; B never does on time (its window ends at 20).
    assert card.longest_blackout == pytest.approx(7.0)


def test_a_missed_reminder_ends_its_part_in_a_blackout_at_its_deadline() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), owed("BBBBBBBB", 2)))
    assert card.longest_blackout == pytest.approx(10.0)  # owed from 2 s until its 12 s deadline


def test_spam_filtered_reminders_are_not_backlog() -> None:
    # A backup vendor lands in the spam folder while the primary is down; every message
    # arrived in 0.5 s.
    events: list[Event] = [*step(0, "proxy.down", "vendors.sms", 20, 40)]
    for ref, at in every_second(60):
        vendor = "backup" if 20 <= at < 40 else "sms"
        events += [owed(ref, at), sent(ref, at, arrive=0.5, vendor=vendor,
                                       handset="spam" if vendor == "backup" else "delivered")]
    card = score(journal(*events))
    assert card.outcomes["filtered"] == 20
    assert card.longest_blackout == pytest.approx(0.5)
    [fault] = card.faults
    assert fault.recovery is not None and fault.recovery <= 0.5
    assert card.max_recovery == fault.recovery


def test_recovery_is_when_the_backlog_is_back_to_its_size_before_the_fault() -> None:
    events: list[Event] = [*step(0, "vendor.latency", "vendors.sms", 20, 30)]
    for ref, at in every_second(60):
        # Reminders due while the vendor stalled all arrive at 35 s; the others in 0.5 s.
        arrive = 35.0 - at if 20 <= at <= 30 else 0.5
        events += [owed(ref, at), sent(ref, at, arrive=arrive)]
    card = score(journal(*events))
    [fault] = card.faults
    assert fault.recovery == pytest.approx(5.0)
    assert card.max_recovery == pytest.approx(5.0)


def test_a_backlog_emptied_only_by_missed_deadlines_recovers_when_the_last_window_closes(
) -> None:
    events: list[Event] = [*step(0, "proxy.down", "vendors.sms", 20, 30)]
    for ref, at in every_second(60):
        events.append(owed(ref, at))
        if at < 20:
            events.append(sent(ref, at, arrive=0.5))
    card = score(journal(*events, end=80))
    # Before the fault one reminder waited at a time; one is left when the window of the
    # second-last closes, at 68 s.
    assert card.faults[0].recovery == pytest.approx(68 - 30)


def test_a_step_still_active_at_the_end_has_no_recovery() -> None:
    card = score(journal(step(0, "proxy.down", "vendors.sms", 20, None),
                         owed("AAAAAAAA", 25), sent("AAAAAAAA", 26)))
    assert card.faults[0].recovery is None
    assert card.max_recovery is None


def test_max_recovery_is_none_without_a_step() -> None:
    assert score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1))).max_recovery is None


def test_the_series_has_one_sample_a_second() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
                         owed("BBBBBBBB", 1), sent("BBBBBBBB", 2, arrive=1.5),
                         owed("CCCCCCCC", 2, scheduled=0), sent("CCCCCCCC", 2, handset="spam"),
                         end=15))
    assert len(card.series) == 16
    assert [(s.t, s.due, s.on_time, s.backlog) for s in card.series[:6]] == [
        (0.0, 1, 0, 1), (1.0, 2, 1, 1), (2.0, 3, 1, 1), (3.0, 3, 1, 1), (4.0, 3, 2, 0),
        (5.0, 3, 2, 0)]


def test_a_missed_reminder_with_other_channels_blacks_out_until_the_longest_window() -> None:
    run = scenario("channels={push: {window: 30s}, email: {window: 40s}}")
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), owed("BBBBBBBB", 2),
                         run=run))
    assert card.longest_blackout == pytest.approx(40.0)  # owed from 2 s until e-mail's 42 s
