"""Per-fault rows: exposure, what a step touched, detection by alerts, and steps that cannot
tell."""

from __future__ import annotations

from typing import Any

import pytest

from harness.continuity import score
from harness.journal import AlertReceived, FaultMeasured, FaultTouched
from harness.scorecard import OUTCOMES
from tests.harness.journals import OTHER_PHONE, T0, journal, owed, scenario, sent, step

TIMELINE = scenario(
    "duration=120s",
    "timeline=[{at: 30s, for: 30s, fault: proxy.down, link: vendors.sms},"
    " {at: 70s, for: 10s, fault: data.drift, link: ledger, params: {field: amount}},"
    " {at: 90s, fault: process.restart, link: target}]")


def touched(at: float, switch: str, subject: str = "", mock: str = "sms",
            **detail: Any) -> FaultTouched:
    return FaultTouched(t=T0 + at, mock=mock, switch=switch, subject=subject, detail=detail)


def alert(at: float, **body: Any) -> AlertReceived:
    return AlertReceived(t=T0 + at, body={"summary": "trouble", **body})


def measured(index: int, at: float, affected: int, detail: str) -> FaultMeasured:
    return FaultMeasured(t=T0 + at, step=index, probes=5, affected=affected, detail=detail)


def test_a_fault_row_has_every_outcome_and_adds_up() -> None:
    card = score(journal(
        step(0, "vendor.outage", "vendors.sms", 30, 60),
        owed("AAAAAAAA", 35), sent("AAAAAAAA", 36),
        owed("BBBBBBBB", 35), sent("BBBBBBBB", 50),
        owed("CCCCCCCC", 35),
        owed("DDDDDDDD", 35), sent("DDDDDDDD", 36, amount="1.00"),
        owed("EEEEEEEE", 35), sent("EEEEEEEE", 36, to=OTHER_PHONE),
        owed("FFFFFFFF", 35), sent("FFFFFFFF", 36, handset="spam"), sent("FFFFFFFF", 37,
                                                                          handset="spam"),
        owed("GGGGGGGG", 35), sent("GGGGGGGG", 36, handset="absent"),
        owed("HHHHHHHH", 40), sent("HHHHHHHH", 36),
        touched(31, "outage"),
    ))
    [row] = card.faults
    assert set(row.outcomes_exposed) == set(OUTCOMES)
    assert sum(row.outcomes_exposed.values()) == row.exposed == 8
    assert row.outcomes_exposed == {"on_time": 1, "late": 1, "missed": 1, "early": 1,
                                    "filtered": 1, "unreachable": 1, "wrong_content": 1,
                                    "wrong_recipient": 1}
    assert row.duplicates_exposed == 1


def test_exposure_is_reminders_waiting_while_the_fault_was_active() -> None:
    card = score(journal(
        step(0, "proxy.down", "vendors.sms", 30, 60),
        owed("AAAAAAAA", 25), sent("AAAAAAAA", 26),          # delivered before: not exposed
        owed("BBBBBBBB", 25), sent("BBBBBBBB", 32),          # still waiting at 30 s: exposed
        owed("CCCCCCCC", 22),                                # window open until 32 s: exposed
        owed("DDDDDDDD", 15),                                # window closed at 25 s: not
        owed("EEEEEEEE", 45), sent("EEEEEEEE", 46),          # due during it: exposed
        owed("FFFFFFFF", 61), sent("FFFFFFFF", 62),          # due after it: not exposed
        measured(0, 31, 5, "5 of 5 canary connections refused"),
    ))
    [row] = card.faults
    assert row.exposed == 3
    assert (row.outcomes_exposed["on_time"], row.outcomes_exposed["missed"]) == (2, 1)
    assert (row.applied_at, row.reverted_at) == (30.0, 60.0)


def test_a_data_fault_exposes_the_records_it_touched() -> None:
    card = score(journal(
        step(1, "data.drift", "ledger", 70, 80, {"field": "amount"}),
        owed("AAAAAAAA", 75), sent("AAAAAAAA", 75, amount="200.00"),
        owed("BBBBBBBB", 75), sent("BBBBBBBB", 75),
        owed("CCCCCCCC", 100, scheduled=72), sent("CCCCCCCC", 100, amount="200.00"),
        touched(70.5, "drift", "rem-AAAAAAAA", mock="ledger", field="amount"),
        touched(72, "drift", "rem-CCCCCCCC", mock="ledger", field="amount"),
        touched(90, "drift", "rem-BBBBBBBB", mock="ledger", field="amount"),  # after it ended
        end=130, run=TIMELINE))
    [row] = card.faults
    assert row.touched == 2
    assert row.effect == "2 records drifted (amount)"
    assert row.exposed == 2  # C fell due after the step, but its record was drifted
    assert row.outcomes_exposed["wrong_content"] == 2


def test_a_vendor_step_counts_what_its_switches_touched() -> None:
    card = score(journal(
        step(0, "vendor.outage", "vendors.sms", 30, 60, {"status": 503}),
        owed("AAAAAAAA", 40), sent("AAAAAAAA", 41, vendor="backup"),
        touched(31, "outage"), touched(40, "outage"), touched(60.5, "outage"),
        touched(62, "outage"),                              # after the step (and its grace)
        touched(40, "drop"),                                # another switch
        touched(40, "outage", mock="backup"),               # another vendor
    ))
    [row] = card.faults
    assert (row.touched, row.effect) == (3, "3 calls refused (outage)")
    assert card.inconclusive == []


def test_compliance_and_channel_steps_say_what_they_touched_in_their_words() -> None:
    both = scenario("channels={push: {window: 60s}, email: {window: 60s}}")
    card = score(journal(
        step(0, "vendor.template_rejected", "vendors.sms", 30, 60),
        step(1, "vendor.content_filter", "vendors.backup", 30, 60, {"action": "spam"}),
        step(2, "push.unavailable", "push", 30, 60),
        step(3, "email.greylist", "email", 30, 60, {"retry_after": 5000}),
        owed("AAAAAAAA", 40), sent("AAAAAAAA", 41),
        touched(31, "rejects"), touched(32, "rejects"),
        touched(33, "content_filter", mock="backup"),
        touched(34, "unavailable", mock="push"), touched(35, "unavailable", mock="sms"),
        touched(36, "greylist", mock="email"),
        run=both))
    assert [(row.touched, row.effect) for row in card.faults] == [
        (2, "2 sends refused as no longer approved (template)"),
        (1, "1 messages caught by the content rule (spam)"),
        (1, "1 sends refused as unavailable (unavailable)"),
        (1, "1 messages greylisted (greylist)")]


def test_a_step_that_touched_nothing_makes_the_run_inconclusive() -> None:
    card = score(journal(
        step(0, "proxy.latency", "ledger", 30, 60, {"latency": 500}),
        owed("AAAAAAAA", 40), sent("AAAAAAAA", 41),
        measured(0, 31, 0, "0 of 5 canary connections delayed (toxicity is per connection)"),
    ))
    [row] = card.faults
    assert row.touched == 0
    assert card.inconclusive == [
        "step 0 proxy.latency on ledger: touched nothing (0 of 5 canary connections delayed "
        "(toxicity is per connection))"]
    assert card.verdict == "inconclusive" and card.passed is False


def test_a_step_no_owed_reminder_was_exposed_to_is_inconclusive() -> None:
    card = score(journal(
        owed("AAAAAAAA", 10), sent("AAAAAAAA", 11),
        step(0, "vendor.outage", "vendors.sms", 30, 60), touched(35, "outage"),
        owed("BBBBBBBB", 70), sent("BBBBBBBB", 71),
    ))
    assert card.inconclusive == [
        "step 0 vendor.outage on vendors.sms: no owed reminder was exposed to it"]
    assert card.verdict == "inconclusive"


def test_an_unmeasured_vendor_step_says_what_it_did_not_see() -> None:
    card = score(journal(step(0, "vendor.dlr", "vendors.sms", 30, 60, {"delay": 2000}),
                         owed("AAAAAAAA", 40), sent("AAAAAAAA", 41)))
    [row] = card.faults
    assert row.touched == 0
    assert row.effect.startswith("no sms record of dlr_delay, dlr_duplicate")
    assert len(card.inconclusive) == 1


def test_an_instant_step_is_judged_at_its_moment() -> None:
    card = score(journal(
        step(2, "process.restart", "target", 90, None),
        measured(2, 91, 1, "restarted pid 123 (SIGTERM), ready after 0.8 s"),
        owed("AAAAAAAA", 85), sent("AAAAAAAA", 92),
        owed("BBBBBBBB", 95), sent("BBBBBBBB", 96), end=130, run=TIMELINE))
    [row] = card.faults
    assert (row.touched, row.exposed, row.reverted_at) == (1, 1, None)
    assert row.effect == "restarted pid 123 (SIGTERM), ready after 0.8 s"
    assert row.recovery is not None
    assert row.expect_alert is False
    assert card.inconclusive == []


def test_detection_counts_only_alerts_while_active_and_about_the_link() -> None:
    card = score(journal(
        alert(5),                                            # before the fault
        step(0, "proxy.down", "vendors.sms", 30, 60),
        alert(31, dependency="aliyun"),                      # about something else
        alert(32, dependency="ledger"),
        alert(33.5, dependency="sms"),
        owed("AAAAAAAA", 40), sent("AAAAAAAA", 41, vendor="backup"),
        measured(0, 30, 5, "5 of 5 canary connections refused"),
        end=130, run=TIMELINE))
    [row] = card.faults
    assert row.detection == pytest.approx(3.5)
    assert row.expect_alert is True
    assert (card.undetected_faults, card.detection_time) == (0, 3.5)
    assert card.alerts == 4


@pytest.mark.parametrize(("body", "at", "counts"), [
    ({"dependency": "vendors.sms"}, 40, True),
    ({}, 40, True),
    ({"dependency": 7}, 40, True),                 # not a name: about anything
    ({"dependency": "backup"}, 40, False),
    ({"dependency": "sms"}, 69.5, True),           # within 10 s after the step
    ({"dependency": "sms"}, 71, False),
    ({"dependency": "sms"}, 29, False),
])
def test_which_alerts_count_for_a_vendor_step(body: dict[str, Any], at: float,
                                              counts: bool) -> None:
    card = score(journal(step(0, "proxy.down", "vendors.sms", 30, 60), alert(at, **body),
                         owed("AAAAAAAA", 40), end=130, run=TIMELINE))
    assert (card.faults[0].detection is not None) is counts
    assert card.undetected_faults == (0 if counts else 1)


def test_an_alert_as_plain_text_counts_for_any_step() -> None:
    card = score(journal(step(0, "proxy.down", "vendors.sms", 30, 60),
                         AlertReceived(t=T0 + 35, body="vendor down"), end=130, run=TIMELINE))
    assert card.faults[0].detection == pytest.approx(5.0)


def test_detection_time_is_the_slowest_detected_of_the_steps_that_expect_an_alert() -> None:
    card = score(journal(
        step(0, "proxy.down", "vendors.sms", 30, 60), alert(34, dependency="sms"),
        step(1, "data.drift", "ledger", 70, 80), alert(79, dependency="ledger"),
        end=130, run=TIMELINE))
    # The data step need not be noticed: only step 0 counts.
    assert (card.undetected_faults, card.detection_time) == (0, 4.0)
    unnoticed = score(journal(step(0, "proxy.down", "vendors.sms", 30, 60), end=130,
                              run=TIMELINE))
    assert (unnoticed.undetected_faults, unnoticed.detection_time) == (1, None)
    nothing_expected = score(journal(step(1, "data.drift", "ledger", 70, 80), end=130,
                                     run=TIMELINE))
    assert (nothing_expected.undetected_faults, nothing_expected.detection_time) == (0, None)
