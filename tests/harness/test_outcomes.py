"""The scorer's outcomes: correlation, content, recipients and timing of each copy."""

from __future__ import annotations

import pytest

from harness.continuity import score
from harness.journal import Event, ReminderChanged
from tests.harness.journals import (
    OTHER_PHONE,
    PHONE,
    T0,
    journal,
    owed,
    phone_changed,
    scenario,
    sent,
)


def test_each_outcome_is_counted_once_per_owed_reminder() -> None:
    card = score(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 2),                           # on time
        owed("BBBBBBBB", 0), sent("BBBBBBBB", 15),                          # late
        owed("CCCCCCCC", 0),                                                # missed
        owed("DDDDDDDD", 0), sent("DDDDDDDD", 3, to="+8613999999999"),      # wrong recipient
        owed("EEEEEEEE", 0), sent("EEEEEEEE", 3, amount="99.00"),           # wrong content
        owed("FFFFFFFF", 10), sent("FFFFFFFF", 5),                          # early
        owed("GGGGGGGG", 0), sent("GGGGGGGG", 1, handset="spam"),           # filtered
        owed("HHHHHHHH", 0), sent("HHHHHHHH", 1, handset="absent"),         # unreachable
    ))
    assert card.owed == 8
    assert card.outcomes == {"on_time": 1, "late": 1, "missed": 1, "early": 1, "filtered": 1,
                             "unreachable": 1, "wrong_content": 1, "wrong_recipient": 1}
    assert card.continuity == pytest.approx(1 / 8)
    assert card.toxiproxy_version == "2.12.0"


def test_a_wrong_amount_is_wrong_content_not_missed_and_unmatched() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, amount="200.00")))
    assert card.outcomes["wrong_content"] == 1
    assert card.outcomes["missed"] == 0
    assert card.unmatched == 0
    [trace] = card.worst
    assert trace.attempts[0].verdict == "wrong content: amount not found"
    assert "amount 100.00" in trace.why


def test_a_banks_own_wording_with_only_the_ref_is_matched_and_checked() -> None:
    worded = scenario(
        "reminders.correlate={body: '(?:参考号|ref)[:：](?P<ref>[A-Z0-9]{8})'}",
        "reminders.content={amount: '(¥|CNY ?){amount_grouped}', due: '{due_month}月{due_day}日'}")
    body = "尊敬的王伟，您本期房贷 ¥5,234.00 将于12月05日到期。参考号：AAAAAAAA"
    card = score(journal(owed("AAAAAAAA", 0, amount="5234.00"), sent("AAAAAAAA", 1, body=body),
                         owed("BBBBBBBB", 0, amount="5234.00"),
                         sent("BBBBBBBB", 1, body=body.replace("AAAAAAAA", "BBBBBBBB")
                              .replace("5,234", "5,243")),
                         run=worded))
    assert card.unmatched == 0
    assert card.outcomes["on_time"] == 1
    assert card.outcomes["wrong_content"] == 1


def test_the_client_reference_correlates_without_the_body() -> None:
    card = score(journal(owed("AAAAAAAA", 0),
                         sent("AAAAAAAA", 1, client_ref="AAAAAAAA",
                              body="100.00 due 2026-12-05"),
                         sent("ZZZZZZZZ", 1)))
    assert card.outcomes["on_time"] == 1
    assert card.unmatched == 1


def test_unmatched_counts_only_messages_that_arrived() -> None:
    card = score(journal(sent("ZZZZZZZZ", 1), sent("YYYYYYYY", 1, handset="spam"),
                         sent("XXXXXXXX", 1, handset="dropped"),
                         sent("WWWWWWWW", 1, handset="absent")))
    assert card.unmatched == 2


def test_a_partial_repayment_makes_the_new_amount_right_after_the_grace() -> None:
    events: list[Event] = []
    for ref, at, amount in (("AAAAAAAA", 5.5, "100.00"), ("BBBBBBBB", 5.5, "40.00"),
                            ("CCCCCCCC", 7, "100.00"), ("DDDDDDDD", 7, "40.00")):
        events += [owed(ref, 5, scheduled=0),
                   ReminderChanged(t=T0 + 5, reminder_id=f"rem-{ref}",
                                   change="partially_repaid", amount="40.00"),
                   sent(ref, at, amount=amount)]
    card = score(journal(*events))
    # Within the second after the change both amounts are right; after it only the new one.
    assert card.outcomes["on_time"] == 3
    assert card.outcomes["wrong_content"] == 1
    assert card.worst[0].reminder_id == "rem-CCCCCCCC"


def test_a_send_to_the_old_number_after_a_phone_change_is_wrong_recipient() -> None:
    card = score(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
        phone_changed(12, OTHER_PHONE),
        owed("BBBBBBBB", 20, phone=OTHER_PHONE, scheduled=15), sent("BBBBBBBB", 20),
        owed("CCCCCCCC", 20, phone=OTHER_PHONE, scheduled=15), sent("CCCCCCCC", 20),
        sent("CCCCCCCC", 20.1, to=OTHER_PHONE, arrive=0.2)))
    # B went to the stale number; C too, then to the new one, which counts.
    assert card.outcomes == {**dict.fromkeys(card.outcomes, 0), "on_time": 2,
                             "wrong_recipient": 1}
    [trace] = [t for t in card.worst if t.reminder_id == "rem-BBBBBBBB"]
    assert trace.outcome == "wrong_recipient"
    assert trace.why == (f"sent to {PHONE}, the borrower's number until 12.0 s "
                         f"(now {OTHER_PHONE})")
    assert trace.attempts[0].to == PHONE
    assert trace.attempts[0].verdict.startswith("wrong recipient")


def test_the_old_number_is_still_right_within_a_second_of_the_change() -> None:
    card = score(journal(owed("AAAAAAAA", 12, scheduled=0), phone_changed(12, OTHER_PHONE),
                         sent("AAAAAAAA", 12.5)))
    assert card.outcomes["on_time"] == 1


def test_national_and_international_forms_of_a_number_are_the_same_recipient() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, to="13800000001"),
                         owed("BBBBBBBB", 0), sent("BBBBBBBB", 1, to="008613800000001")))
    assert card.outcomes["on_time"] == 2


def test_a_send_just_before_remind_at_is_not_early_and_an_earlier_one_is() -> None:
    card = score(journal(owed("AAAAAAAA", 10), sent("AAAAAAAA", 9.96),
                         owed("BBBBBBBB", 10), sent("BBBBBBBB", 9.9)))
    assert (card.outcomes["on_time"], card.outcomes["early"]) == (1, 1)
    [early] = [t for t in card.worst if t.outcome == "early"]
    assert early.attempts[0].verdict == "early: accepted 0.10 s before remind_at"


def test_an_early_copy_then_a_correct_one_is_on_time_with_a_duplicate() -> None:
    card = score(journal(owed("AAAAAAAA", 10), sent("AAAAAAAA", 2), sent("AAAAAAAA", 11)))
    assert card.outcomes["on_time"] == 1
    assert card.duplicates == 1


def test_the_first_correct_copy_decides_and_extra_copies_are_duplicates() -> None:
    card = score(journal(owed("AAAAAAAA", 0),
                         sent("AAAAAAAA", 1, to="+8613999999999"),
                         sent("AAAAAAAA", 4), sent("AAAAAAAA", 5), sent("AAAAAAAA", 30)))
    assert card.outcomes["on_time"] == 1
    assert card.duplicates == 3
    assert card.latency.p50 == pytest.approx(4.0)


def test_the_copy_that_reached_the_inbox_first_decides() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, arrive=20),
                         sent("AAAAAAAA", 2, arrive=1)))
    assert card.outcomes["on_time"] == 1
    assert card.latency.p50 == pytest.approx(3.0)


def test_wrong_recipient_and_wrong_content_go_by_whichever_came_first() -> None:
    card = score(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, amount="1.00"),
        sent("AAAAAAAA", 2, to=OTHER_PHONE),
        owed("BBBBBBBB", 0), sent("BBBBBBBB", 1, to=OTHER_PHONE),
        sent("BBBBBBBB", 2, amount="1.00"),
        owed("CCCCCCCC", 0), sent("CCCCCCCC", 1, handset="spam"),
        sent("CCCCCCCC", 2, amount="1.00")))
    assert (card.outcomes["wrong_content"], card.outcomes["wrong_recipient"]) == (2, 1)


def test_filtered_outranks_early_and_unreachable() -> None:
    card = score(journal(owed("AAAAAAAA", 10), sent("AAAAAAAA", 2),
                         sent("AAAAAAAA", 11, handset="absent"),
                         sent("AAAAAAAA", 12, handset="spam"),
                         owed("BBBBBBBB", 10), sent("BBBBBBBB", 2),
                         sent("BBBBBBBB", 11, handset="absent"),
                         owed("CCCCCCCC", 10), sent("CCCCCCCC", 11, handset="absent"),
                         sent("CCCCCCCC", 12, handset="dropped")))
    assert (card.outcomes["filtered"], card.outcomes["early"],
            card.outcomes["unreachable"]) == (1, 1, 1)


def test_sends_that_never_reached_a_handset_are_not_deliveries() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, handset="dropped"),
                         sent("AAAAAAAA", 2, handset="dropped")))
    assert card.outcomes["missed"] == 1
    assert card.duplicates == 0
    assert card.worst[0].why == "2 sent, all dropped by the vendor: none arrived"


def test_a_spam_copy_then_an_inbox_copy_is_on_time_with_a_duplicate() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, handset="spam"),
                         sent("AAAAAAAA", 3)))
    assert card.outcomes["on_time"] == 1
    assert card.duplicates == 1


def test_a_reminder_whose_window_outlasts_the_run_is_not_yet_settled() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), owed("BBBBBBBB", 95),
                         owed("CCCCCCCC", 95), sent("CCCCCCCC", 96), end=100))
    assert card.owed == 2
    assert card.unsettled == 1
    assert card.continuity == 1.0


def test_latency_percentiles_use_nearest_rank_over_on_time_and_late() -> None:
    events: list[Event] = []
    for i in range(20):
        ref = f"R{i:07d}"
        events += [owed(ref, i), sent(ref, i, arrive=(i + 1) * 0.75)]
    card = score(journal(*events))
    assert card.outcomes["late"] == 7  # 10.5 s and more
    assert card.latency.p50 == pytest.approx(7.5)
    assert card.latency.p95 == pytest.approx(14.25)
    assert card.latency.p99 == pytest.approx(15.0)
