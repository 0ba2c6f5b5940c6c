"""Scoring across channels: per-channel windows, recipients by address and push token,
duplicates per channel, settling by the longest window, the channel mix and the shares outside
faults, and opt-outs made in the app."""

from __future__ import annotations

from typing import Any

from harness.continuity import score
from harness.journal import BorrowerOptedOut, ReminderChanged, ReminderScheduled, SendRecorded
from tests.harness.journals import PHONE, T0, journal, owed, scenario, sent, step

RUN = scenario("channels={push: {window: 60s}, email: {window: 300s}}")
PUSH_ONLY = scenario("channels={push: {window: 60s}}")
TOKEN = "fZx1-token-of-B1:APA91bHn0tR3al"
EMAIL = "wang.wei.1@example.com"


def due(ref: str, at: float, **kwargs: Any) -> ReminderScheduled:
    """A reminder of borrower B1, who has an e-mail address and the app."""
    return owed(ref, at, **kwargs).model_copy(update={"email": EMAIL, "device_token": TOKEN})


def pushed(ref: str, at: float, to: str = TOKEN, **kwargs: Any) -> SendRecorded:
    return sent(ref, at, to=to, **kwargs).model_copy(update={"channel": "push",
                                                             "vendor": "push"})


def mailed(ref: str, at: float, to: str = EMAIL, **kwargs: Any) -> SendRecorded:
    return sent(ref, at, to=to, **kwargs).model_copy(update={"channel": "email",
                                                             "vendor": "email"})


def test_push_after_sms_failed_is_on_time_within_the_push_window_and_late_after() -> None:
    card = score(journal(
        due("AAAAAAAA", 0), sent("AAAAAAAA", 1, handset="dropped"), pushed("AAAAAAAA", 30),
        due("BBBBBBBB", 0), sent("BBBBBBBB", 1, handset="dropped"), pushed("BBBBBBBB", 70),
        end=400, run=RUN))
    assert (card.outcomes["on_time"], card.outcomes["late"]) == (1, 1)
    assert card.channel_mix == {"sms": 0, "push": 2, "email": 0}
    late, on_time = card.worst
    assert late.why == "arrived 70.00 s after remind_at, 10.00 s after its push window closed"
    assert on_time.why == "arrived 30.00 s after remind_at, within its 60 s push window"
    assert [(a.channel, a.verdict) for a in late.attempts] == [
        ("sms", "dropped by the vendor"),
        ("push", "late: arrived 10.00 s after its push window")]


def test_sms_keeps_its_own_window_beside_the_longer_ones() -> None:
    card = score(journal(due("AAAAAAAA", 0), sent("AAAAAAAA", 15), end=400, run=RUN))
    assert card.outcomes["late"] == 1
    assert card.worst[0].why == "arrived 15.00 s after remind_at, 5.00 s after its window closed"


def test_the_first_correct_delivery_on_any_channel_decides() -> None:
    card = score(journal(
        due("AAAAAAAA", 0), mailed("AAAAAAAA", 1, arrive=1), sent("AAAAAAAA", 1, arrive=3),
        end=400, run=RUN))
    assert card.channel_mix == {"sms": 0, "push": 0, "email": 1}
    assert card.latency.p50 == 2.0


def test_one_copy_per_channel_is_no_duplicate_two_on_one_channel_are() -> None:
    card = score(journal(
        due("AAAAAAAA", 0), sent("AAAAAAAA", 1), pushed("AAAAAAAA", 2), mailed("AAAAAAAA", 3),
        due("BBBBBBBB", 0), pushed("BBBBBBBB", 1), pushed("BBBBBBBB", 2),
        sent("BBBBBBBB", 3),
        end=400, run=RUN))
    assert card.duplicates == 1
    assert card.gates[1].witnesses == ["rem-BBBBBBBB"]
    traces = {trace.ref: trace for trace in card.worst}
    assert [a.verdict for a in traces["AAAAAAAA"].attempts] == [
        "on time", "also delivered by push: one copy per channel is no duplicate",
        "also delivered by email: one copy per channel is no duplicate"]
    assert [a.verdict for a in traces["BBBBBBBB"].attempts] == [
        "on time", "duplicate: another copy had arrived first",
        "also delivered by sms: one copy per channel is no duplicate"]


def test_the_recipient_is_the_borrowers_token_or_address_in_any_case() -> None:
    card = score(journal(
        due("AAAAAAAA", 0), pushed("AAAAAAAA", 1, to="someone-elses-token"),
        due("BBBBBBBB", 0), mailed("BBBBBBBB", 1, to="Wang.Wei.1@Example.COM"),
        due("CCCCCCCC", 0), mailed("CCCCCCCC", 1, to="wang.wei.2@example.com"),
        owed("DDDDDDDD", 0, borrower="B2", phone="+8613900000002"),   # no app, no address
        pushed("DDDDDDDD", 1, to=""), mailed("DDDDDDDD", 1, to=""),
        end=400, run=RUN))
    assert card.outcomes["wrong_recipient"] == 3 and card.outcomes["on_time"] == 1
    traces = {trace.ref: trace for trace in card.worst}
    assert traces["AAAAAAAA"].why == (f"sent to someone-elses-token, not the borrower's push "
                                      f"token (theirs: {TOKEN})")
    assert traces["CCCCCCCC"].attempts[0].verdict == (
        f"wrong recipient: not the borrower's address (theirs: {EMAIL})")
    assert traces["DDDDDDDD"].attempts[0].verdict == (
        "wrong recipient: not the borrower's push token (theirs: none)")


def test_a_reminder_is_settled_when_its_longest_window_has_closed() -> None:
    waiting = score(journal(due("AAAAAAAA", 0), due("BBBBBBBB", 0), sent("BBBBBBBB", 1),
                            end=100, run=RUN))
    assert (waiting.owed, waiting.unsettled, waiting.outcomes["on_time"]) == (1, 1, 1)
    closed = score(journal(due("AAAAAAAA", 0), end=301, run=RUN))
    assert (closed.owed, closed.outcomes["missed"]) == (1, 1)
    # With SMS alone the same reminder is settled (missed) once its SMS window closed.
    assert score(journal(due("AAAAAAAA", 0), end=100)).outcomes["missed"] == 1


def test_a_channel_the_scenario_does_not_allow_is_judged_but_decides_nothing() -> None:
    card = score(journal(due("AAAAAAAA", 0), mailed("AAAAAAAA", 1), mailed("AAAAAAAA", 2),
                         end=400, run=PUSH_ONLY))
    assert card.outcomes["missed"] == 1
    assert card.duplicates == 1 and card.unmatched == 0
    assert card.channel_mix == {"sms": 0, "push": 0}
    assert [a.verdict for a in card.worst[0].attempts] == [
        "arrived correctly; email is no channel of the scenario: it decides nothing",
        "duplicate: another copy had arrived first; email is no channel of the scenario: it "
        "decides nothing"]


def test_the_channel_mix_and_the_shares_outside_faults() -> None:
    card = score(journal(
        step(0, "proxy.down", "vendors.sms", 20, 40),
        due("AAAAAAAA", 0), sent("AAAAAAAA", 1),                   # before the fault
        due("BBBBBBBB", 5), pushed("BBBBBBBB", 6),
        due("CCCCCCCC", 25), pushed("CCCCCCCC", 26),               # exposed to it
        due("DDDDDDDD", 30), mailed("DDDDDDDD", 45),               # waited while it was down
        due("EEEEEEEE", 50), mailed("EEEEEEEE", 51),               # after it
        due("FFFFFFFF", 60), sent("FFFFFFFF", 61),
        due("GGGGGGGG", 60), sent("GGGGGGGG", 61, handset="dropped"),  # missed: not delivered
        end=400, run=RUN))
    assert card.channel_mix == {"sms": 2, "push": 2, "email": 2}
    [row] = card.faults
    assert (row.exposed, row.channels_exposed) == (2, {"sms": 0, "push": 1, "email": 1})
    assert (card.sms_share, card.push_share, card.email_share) == (0.5, 0.25, 0.25)
    assert card.metric("sms_share") == 0.5


def test_a_share_is_none_for_a_channel_not_allowed_and_when_nothing_was_delivered() -> None:
    sms_only = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1)))
    assert sms_only.channel_mix == {"sms": 1}
    assert (sms_only.sms_share, sms_only.push_share, sms_only.email_share) == (1.0, None, None)
    nothing = score(journal(due("AAAAAAAA", 0), end=400, run=RUN))
    assert (nothing.sms_share, nothing.push_share, nothing.email_share) == (None, None, None)
    assert nothing.channel_mix == {"sms": 0, "push": 0, "email": 0}


def app_opt_out(at: float) -> BorrowerOptedOut:
    return BorrowerOptedOut(t=T0 + at, phone=PHONE, vendor="app")


def test_an_opt_out_in_the_app_counts_exactly_as_a_stop_reply() -> None:
    card = score(journal(
        due("AAAAAAAA", 0), pushed("AAAAAAAA", 1),
        app_opt_out(3),
        due("BBBBBBBB", 5), pushed("BBBBBBBB", 6), mailed("BBBBBBBB", 7),
        mailed("ZZZZZZZZ", 20, body="hello"),                     # uncorrelated, by address
        end=400, run=RUN))
    assert (card.owed, card.outcomes["on_time"]) == (1, 1)
    assert (card.opted_out, card.sent_to_opted_out) == (1, 3)
    stop = BorrowerOptedOut(t=T0 + 3, phone=PHONE, vendor="sms")
    by_sms = score(journal(
        due("AAAAAAAA", 0), pushed("AAAAAAAA", 1), stop,
        due("BBBBBBBB", 5), pushed("BBBBBBBB", 6), mailed("BBBBBBBB", 7),
        mailed("ZZZZZZZZ", 20, body="hello"), end=400, run=RUN))
    assert (by_sms.owed, by_sms.opted_out, by_sms.sent_to_opted_out) == (1, 1, 3)


def repayment(at: float) -> ReminderChanged:
    return ReminderChanged(t=T0 + at, reminder_id="rem-AAAAAAAA", change="repaid",
                           amount="0.00")


def test_an_opt_out_or_a_repayment_before_the_longest_window_closed_means_not_owed() -> None:
    # The SMS window closed at 10 s; the push window was still open at 30 s.
    opted_out = score(journal(due("AAAAAAAA", 0), app_opt_out(30), end=400, run=RUN))
    assert (opted_out.owed, opted_out.outcomes["missed"]) == (0, 0)
    repaid = score(journal(
        due("AAAAAAAA", 0),
        repayment(30), end=400, run=RUN))
    assert (repaid.owed, repaid.cancelled) == (0, 1)
    # With SMS alone both came after the reminder's window: it was owed, and missed.
    for late_news in (app_opt_out(30), repayment(30)):
        assert score(journal(due("AAAAAAAA", 0), late_news)).outcomes["missed"] == 1


def test_the_copy_that_arrived_later_on_the_deciding_channel_is_the_duplicate() -> None:
    card = score(journal(due("AAAAAAAA", 0), sent("AAAAAAAA", 1, arrive=4),
                         sent("AAAAAAAA", 2, arrive=1, vendor="backup"),
                         pushed("AAAAAAAA", 3, arrive=2),
                         pushed("AAAAAAAA", 3.5, arrive=0.1),
                         end=400, run=RUN))
    assert card.duplicates == 2
    assert [a.verdict for a in card.worst[0].attempts] == [
        "duplicate: another copy had arrived first", "on time",
        "duplicate: another copy had arrived first",
        "also delivered by push: one copy per channel is no duplicate"]
