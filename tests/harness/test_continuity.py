"""The scorer, on hand-made journals whose answers are known."""

from __future__ import annotations

from typing import Literal

import pytest

from harness.continuity import score
from harness.errors import JournalError
from harness.journal import (
    AlertReceived,
    BorrowerOptedOut,
    ComponentReady,
    Event,
    FaultApplied,
    FaultReverted,
    Journal,
    LoadStarted,
    ReminderOwed,
    RunEnded,
    RunStarted,
    SendRecorded,
    VendorCall,
)
from harness.scenario import Sla, parse_scenario

SCENARIO = parse_scenario("""\
name: hand-made
duration: 60s
target: {command: [notifier], health: "tcp://127.0.0.1:1"}
vendors: {sms: {kind: twilio}}
reminders:
  rate: 1/s
  window: 10s
  correlate: {body: 'ref:(?P<ref>\\w{8}) amount:(?P<amount>[\\d.]+)', client_ref: true}
gates: [continuity >= 0.5, duplicates == 0, p95_latency <= 5s]
""")
T0 = 1_000_000.0


def owed(ref: str, at: float, phone: str = "+8613800000001") -> ReminderOwed:
    return ReminderOwed(t=T0 + at, reminder_id=f"rem-{ref}", ref=ref, loan_ref="L1", name="王伟",
                        phone=phone, amount="100.00", due_date="2026-12-05",
                        remind_at=T0 + at, send_by=T0 + at + 10)


def sent(ref: str, at: float, to: str = "+8613800000001", amount: str = "100.00",
         client_ref: str | None = None, body: str | None = None,
         handset: Literal["delivered", "spam", "absent", "dropped"] = "delivered",
         ) -> SendRecorded:
    text = f"ref:{ref} amount:{amount}" if body is None else body
    arrived = handset in ("delivered", "spam")
    return SendRecorded(t=T0 + at, vendor="sms", message_id=f"m{at}", to=to, body=text,
                        client_ref=client_ref, handset=handset,
                        inbox_at=T0 + at if arrived else None)


def journal(*events: Event, end: float = 100.0, status: str = "completed") -> Journal:
    frame: list[Event] = [
        RunStarted(t=T0, scenario=SCENARIO),
        ComponentReady(t=T0, component="toxiproxy", version="2.12.0"),
        RunEnded(t=T0 + end, status=status),  # type: ignore[arg-type]
    ]
    return Journal(tuple(sorted([*frame, *events], key=lambda e: e.t)))


def test_each_outcome_is_counted_once_per_owed_reminder() -> None:
    card = score(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 2),                      # on time
        owed("BBBBBBBB", 0), sent("BBBBBBBB", 15),                     # late
        owed("CCCCCCCC", 0),                                           # missed
        owed("DDDDDDDD", 0), sent("DDDDDDDD", 3, to="+8613999999999"),  # wrong recipient
        owed("EEEEEEEE", 0), sent("EEEEEEEE", 3, amount="99.00"),      # wrong content
    ))
    assert card.owed == 5
    assert card.outcomes == {"on_time": 1, "late": 1, "missed": 1, "filtered": 0,
                             "wrong_content": 1, "wrong_recipient": 1}
    assert card.continuity == pytest.approx(0.2)
    assert card.toxiproxy_version == "2.12.0"


def test_the_first_correct_copy_decides_and_extra_copies_are_duplicates() -> None:
    card = score(journal(owed("AAAAAAAA", 0),
                         sent("AAAAAAAA", 1, to="+8613999999999"),
                         sent("AAAAAAAA", 4), sent("AAAAAAAA", 5), sent("AAAAAAAA", 30)))
    assert card.outcomes["on_time"] == 1
    assert card.duplicates == 3
    assert card.latency.p50 == pytest.approx(4.0)


def test_the_spam_folder_is_not_the_inbox() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, handset="spam"),
                         owed("BBBBBBBB", 0), sent("BBBBBBBB", 1, handset="spam"),
                         sent("BBBBBBBB", 3)))
    assert card.outcomes["filtered"] == 1
    assert card.outcomes["on_time"] == 1
    assert card.duplicates == 1


def test_sends_that_never_reached_a_handset_are_not_deliveries() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, handset="dropped"),
                         owed("BBBBBBBB", 0), sent("BBBBBBBB", 1, handset="absent")))
    assert card.outcomes["missed"] == 2
    assert card.duplicates == 0


def test_after_stop_a_borrower_is_owed_nothing_and_sends_are_defects() -> None:
    card = score(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
        BorrowerOptedOut(t=T0 + 2, phone="+8613800000001", vendor="sms"),
        owed("BBBBBBBB", 5), sent("BBBBBBBB", 6),
        owed("CCCCCCCC", 7, phone="+8613900000002"),
    ))
    assert card.owed == 2
    assert card.outcomes["on_time"] == 1 and card.outcomes["missed"] == 1
    assert card.unmatched == 0
    assert (card.opted_out, card.sent_to_opted_out) == (1, 1)


def test_a_reminder_due_when_its_borrower_replied_stop_is_owed_only_if_it_came_first() -> None:
    stop = BorrowerOptedOut(t=T0 + 3, phone="+8613800000001", vendor="sms")
    came_first = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), stop))
    assert (came_first.owed, came_first.outcomes["on_time"]) == (1, 1)
    # Not sent before the STOP: it may no longer be sent, so the notifier that held it back
    # missed nothing, and the one that sent it anyway sent after STOP.
    held_back = score(journal(owed("AAAAAAAA", 0), stop))
    assert (held_back.owed, held_back.outcomes["missed"]) == (0, 0)
    sent_anyway = score(journal(owed("AAAAAAAA", 0), stop, sent("AAAAAAAA", 4)))
    assert (sent_anyway.owed, sent_anyway.sent_to_opted_out) == (0, 1)
    # A STOP after the reminder's deadline changes nothing about it.
    late_stop = BorrowerOptedOut(t=T0 + 99, phone="+8613800000001", vendor="sms")
    assert score(journal(owed("AAAAAAAA", 0), late_stop)).outcomes["missed"] == 1


def test_client_reference_correlates_when_the_body_does_not() -> None:
    card = score(journal(owed("AAAAAAAA", 0),
                         sent("AAAAAAAA", 1, client_ref="AAAAAAAA", body="no token here"),
                         sent("ZZZZZZZZ", 1)))
    assert card.outcomes["on_time"] == 1
    assert card.unmatched == 1


def test_national_and_international_forms_of_a_number_are_the_same_recipient() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, to="13800000001")))
    assert card.outcomes["on_time"] == 1


def test_a_reminder_whose_window_outlasts_the_run_is_not_yet_owed() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), owed("BBBBBBBB", 95),
                         end=100))
    assert card.owed == 1
    assert card.unsettled == 1
    assert card.continuity == 1.0


def test_latency_percentiles_use_nearest_rank() -> None:
    events: list[Event] = []
    for i in range(20):
        ref = f"R{i:07d}"
        events += [owed(ref, i), sent(ref, i + (i + 1) * 0.25)]
    card = score(journal(*events))
    assert card.latency.p50 == pytest.approx(2.5)
    assert card.latency.p95 == pytest.approx(4.75)
    assert card.latency.p99 == pytest.approx(5.0)


def test_gates_are_judged_and_decide_the_verdict() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), sent("AAAAAAAA", 2)))
    assert [(g.expr, g.value, g.passed) for g in card.gates] == [
        ("continuity >= 0.5", 1.0, True), ("duplicates == 0", 1.0, False),
        ("p95_latency <= 5s", 1.0, True)]
    assert card.passed is False


def test_an_interrupted_run_never_passes() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), status="interrupted"))
    assert all(gate.passed for gate in card.gates)
    assert card.status == "interrupted"
    assert card.passed is False


def test_a_run_with_nothing_owed_fails_the_continuity_gate() -> None:
    card = score(journal())
    assert card.owed == 0
    assert card.continuity == 0.0
    assert card.gates[0].passed is False


def test_detection_time_is_the_first_alert_after_the_fault() -> None:
    card = score(journal(
        AlertReceived(t=T0 + 5, body={"summary": "before the fault"}),
        FaultApplied(t=T0 + 30, step=0, fault="proxy.down", link="vendors.sms"),
        AlertReceived(t=T0 + 33.5, body={"summary": "vendor sms failing"}),
        FaultReverted(t=T0 + 60, step=0, fault="proxy.down", link="vendors.sms"),
    ))
    [fault] = card.faults
    assert (fault.applied_at, fault.reverted_at, fault.detection) == (30.0, 60.0, 3.5)
    assert card.alerts == 2


def test_reminders_whose_window_overlaps_a_fault_are_exposed_to_it() -> None:
    card = score(journal(
        LoadStarted(t=T0 + 10, pid=1),
        owed("ZZZZZZZZ", 10), sent("ZZZZZZZZ", 11),
        owed("AAAAAAAA", 25), sent("AAAAAAAA", 29),
        FaultApplied(t=T0 + 30, step=0, fault="proxy.down", link="vendors.sms"),
        owed("BBBBBBBB", 35), owed("CCCCCCCC", 40), sent("CCCCCCCC", 41), sent("CCCCCCCC", 42),
        FaultReverted(t=T0 + 60, step=0, fault="proxy.down", link="vendors.sms"),
        owed("DDDDDDDD", 61),
    ))
    [fault] = card.faults
    assert (fault.applied_at, fault.reverted_at) == (20.0, 50.0)
    assert fault.exposed == 3
    assert fault.outcomes_exposed["on_time"] == 2
    assert fault.outcomes_exposed["missed"] == 1
    assert fault.duplicates_exposed == 1


def test_longest_blackout_spans_owed_but_undelivered_time_without_deliveries() -> None:
    card = score(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
        owed("BBBBBBBB", 10), owed("CCCCCCCC", 12), sent("BBBBBBBB", 17), sent("CCCCCCCC", 18),
        owed("DDDDDDDD", 40), sent("DDDDDDDD", 41),
    ))
    assert card.longest_blackout == pytest.approx(7.0)


def test_recovery_is_when_the_backlog_is_back_to_its_size_before_the_fault() -> None:
    events: list[Event] = [FaultApplied(t=T0 + 20, step=0, fault="vendor.latency", link="l"),
                           FaultReverted(t=T0 + 30, step=0, fault="vendor.latency", link="l")]
    for i in range(60):
        ref = f"R{i:07d}"
        # Reminders due while the vendor stalled all arrive at 35 s; the others in 0.5 s.
        events += [owed(ref, i), sent(ref, 35.0 if 20 <= i <= 30 else i + 0.5)]
    [fault] = score(journal(*events)).faults
    assert fault.recovery == pytest.approx(5.0)


def test_a_missed_reminder_ends_its_part_in_a_blackout_at_its_deadline() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), owed("BBBBBBBB", 2),
                         end=100))
    assert card.longest_blackout == pytest.approx(10.0)  # owed from 2 s until its 12 s deadline


def test_each_vendor_is_measured_against_its_sla() -> None:
    scenario = SCENARIO.model_copy(update={"slas": {"sms": Sla(availability=0.9,
                                                                p95_latency=1.0)}})
    calls = [VendorCall(t=T0 + i, vendor="sms", status=201, outcome="accepted", latency=0.1)
             for i in range(7)]
    calls += [VendorCall(t=T0 + 8, vendor="sms", status=400, outcome="rejected", latency=0.2),
              VendorCall(t=T0 + 9, vendor="sms", status=429, outcome="refused", latency=0.05),
              VendorCall(t=T0 + 10, vendor="sms", status=None, outcome="lost", latency=30)]
    events = [e if not isinstance(e, RunStarted) else RunStarted(t=T0, scenario=scenario)
              for e in journal(*calls).events]
    card = score(Journal(tuple(events)))
    sms = card.vendors["sms"]
    assert (sms.calls, sms.accepted, sms.rejected, sms.refused, sms.lost) == (10, 7, 1, 1, 1)
    assert sms.availability == pytest.approx(0.8)
    assert sms.p95_latency == pytest.approx(0.2)
    assert sms.sla_met is False and card.sla_breaches == 1


def test_a_journal_without_a_start_cannot_be_scored() -> None:
    with pytest.raises(JournalError, match=r"no run\.started"):
        score(Journal((owed("AAAAAAAA", 0),)))
