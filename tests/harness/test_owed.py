"""Which reminders are owed as the truth changes: repayments, opt-outs at the bank, opt-ins and
STOP replies, and the sends that were defects."""

from __future__ import annotations

from harness.continuity import score
from harness.journal import BorrowerOptedOut, ReminderChanged
from tests.harness.journals import OTHER_PHONE, PHONE, T0, journal, owed, phone_changed, sent


def repaid(ref: str, at: float) -> ReminderChanged:
    return ReminderChanged(t=T0 + at, reminder_id=f"rem-{ref}", change="repaid", amount="0.00")


def stop(at: float, phone: str = PHONE) -> BorrowerOptedOut:
    return BorrowerOptedOut(t=T0 + at, phone=phone, vendor="sms")


def test_a_repaid_reminder_is_cancelled_and_sending_it_is_a_defect() -> None:
    card = score(journal(
        owed("AAAAAAAA", 10, scheduled=0), repaid("AAAAAAAA", 5),                # held back
        owed("BBBBBBBB", 10, scheduled=0), repaid("BBBBBBBB", 5), sent("BBBBBBBB", 10),
        owed("CCCCCCCC", 10, scheduled=0), sent("CCCCCCCC", 10), repaid("CCCCCCCC", 15),
    ))
    assert card.owed == 1 and card.outcomes["on_time"] == 1  # C was delivered, then repaid
    assert card.cancelled == 2
    assert card.sent_after_repayment == 1
    assert card.outcomes["missed"] == 0


def test_a_send_within_a_second_of_the_repayment_is_no_defect() -> None:
    card = score(journal(owed("AAAAAAAA", 5, scheduled=0), repaid("AAAAAAAA", 5),
                         sent("AAAAAAAA", 5.5)))
    assert card.sent_after_repayment == 0
    assert (card.owed, card.outcomes["on_time"]) == (1, 1)


def test_a_repayment_after_the_window_closed_does_not_hide_a_miss() -> None:
    card = score(journal(owed("AAAAAAAA", 0), repaid("AAAAAAAA", 30)))
    assert (card.cancelled, card.outcomes["missed"]) == (0, 1)


def test_an_opt_out_at_the_bank_and_an_opt_in() -> None:
    card = score(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
        phone_changed(5, PHONE, opted_out=True),
        owed("BBBBBBBB", 10, scheduled=8, opted_out=True),                  # held back: fine
        owed("CCCCCCCC", 10, scheduled=8, opted_out=True), sent("CCCCCCCC", 10),  # a defect
        phone_changed(30, PHONE, opted_out=False),
        owed("DDDDDDDD", 40, scheduled=35),                                 # owed again
    ))
    assert card.owed == 2
    assert (card.outcomes["on_time"], card.outcomes["missed"]) == (1, 1)
    assert card.opted_out == 1
    assert card.sent_to_opted_out == 1


def test_a_borrower_opted_out_from_the_start_is_owed_nothing() -> None:
    card = score(journal(owed("AAAAAAAA", 0, opted_out=True),
                         owed("BBBBBBBB", 0, borrower="B2", phone=OTHER_PHONE),
                         sent("BBBBBBBB", 1, to=OTHER_PHONE)))
    assert card.owed == 1
    assert card.opted_out == 0  # not during the run


def test_after_stop_a_borrower_is_owed_nothing_and_sends_are_defects() -> None:
    card = score(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
        stop(3),
        owed("BBBBBBBB", 5), sent("BBBBBBBB", 6),
        owed("CCCCCCCC", 7, borrower="B2", phone=OTHER_PHONE),
    ))
    assert card.owed == 2
    assert card.outcomes["on_time"] == 1 and card.outcomes["missed"] == 1
    assert card.unmatched == 0
    assert (card.opted_out, card.sent_to_opted_out) == (1, 1)


def test_a_reminder_due_when_its_borrower_replied_stop_is_owed_only_if_it_came_first() -> None:
    came_first = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), stop(3)))
    assert (came_first.owed, came_first.outcomes["on_time"]) == (1, 1)
    # Not sent before the STOP: it may no longer be sent, so the notifier that held it back
    # missed nothing, and the one that sent it anyway sent after STOP.
    held_back = score(journal(owed("AAAAAAAA", 0), stop(3)))
    assert (held_back.owed, held_back.outcomes["missed"]) == (0, 0)
    sent_anyway = score(journal(owed("AAAAAAAA", 0), stop(3), sent("AAAAAAAA", 4)))
    assert (sent_anyway.owed, sent_anyway.sent_to_opted_out) == (0, 1)
    # A STOP after the reminder's deadline changes nothing about it.
    assert score(journal(owed("AAAAAAAA", 0), stop(99))).outcomes["missed"] == 1


def test_a_stop_belongs_to_whoever_had_the_number_then() -> None:
    card = score(journal(
        owed("AAAAAAAA", 0), phone_changed(5, OTHER_PHONE),
        owed("BBBBBBBB", 20, borrower="B2", phone=PHONE, scheduled=10),
        stop(15),                                     # from B2, who has PHONE now
        owed("CCCCCCCC", 30, phone=OTHER_PHONE, scheduled=25), sent("CCCCCCCC", 30,
                                                                    to=OTHER_PHONE),
        sent("BBBBBBBB", 21),
    ))
    assert card.sent_to_opted_out == 1  # B's send to B2; B1 never opted out
    assert card.outcomes["on_time"] == 1


def test_an_uncorrelated_send_to_an_opted_out_borrower_is_a_defect() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), stop(3),
                         sent("ZZZZZZZZ", 10, body="hello")))
    assert (card.sent_to_opted_out, card.unmatched) == (1, 1)


def test_a_new_number_does_not_undo_a_stop_but_an_opt_in_does() -> None:
    kept = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), stop(3),
                         phone_changed(10, OTHER_PHONE),
                         owed("BBBBBBBB", 20, phone=OTHER_PHONE, scheduled=15)))
    assert kept.owed == 1
    opted_in = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), stop(3),
                             phone_changed(10, PHONE, opted_out=False),
                             owed("BBBBBBBB", 20, scheduled=15)))
    assert opted_in.owed == 2
