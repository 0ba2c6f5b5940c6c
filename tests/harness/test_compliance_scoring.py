"""pii_exposed and missing_optout_notice as the scorer counts them: arrived messages on any
channel, correlated or not, against the personal data of the borrower they are about; the
fields named in the trace; the gates' witnesses."""

from __future__ import annotations

from typing import Any

from harness.continuity import score
from harness.journal import ReminderScheduled, SendRecorded
from tests.harness.journals import OTHER_PHONE, PHONE, journal, owed, phone_changed, scenario, sent

NATIONAL_ID = "11010519900307005X"
CARD = "6222020909213476"
TOKEN = "fZx1-token-of-B1:APA91bHn0tR3al"
GATES = "gates=[pii_exposed == 0, missing_optout_notice == 0]"
RUN = scenario("channels={push: {window: 60s}}", "compliance={optout_notice: '回T退订'}", GATES)


def due(ref: str, at: float, **kwargs: Any) -> ReminderScheduled:
    """A reminder of B1, whose national id, card and push token the ledger journaled."""
    return owed(ref, at, **kwargs).model_copy(update={
        "national_id": NATIONAL_ID, "account": CARD, "device_token": TOKEN})


def saying(ref: str, at: float, text: str, **kwargs: Any) -> SendRecorded:
    """A correct copy of `ref` that also says `text`."""
    return sent(ref, at, body=f"ref:{ref} amount:100.00 due:2026-12-05 {text}", **kwargs)


def test_a_message_that_shows_personal_data_is_counted_and_names_the_fields() -> None:
    card = score(journal(
        due("AAAAAAAA", 0), saying("AAAAAAAA", 1, f"身份证{NATIONAL_ID} 回T退订"),
        due("BBBBBBBB", 0), saying("BBBBBBBB", 1, "卡号 6222 **** **** 3476 回T退订"),
        due("CCCCCCCC", 0), saying("CCCCCCCC", 1, "尾号3476 回T退订"),          # allowed
        due("DDDDDDDD", 0), saying("DDDDDDDD", 1, f"致电{PHONE} 回T退订", handset="spam"),
        due("EEEEEEEE", 0), saying("EEEEEEEE", 1, f"身份证{NATIONAL_ID}", handset="dropped"),
        end=200, run=RUN))
    assert card.pii_exposed == 3     # the spam folder counts; a dropped message does not
    traces = {trace.ref: trace for trace in card.worst}
    assert [traces[ref].attempts[0].exposed for ref in ("AAAAAAAA", "BBBBBBBB", "CCCCCCCC",
                                                         "DDDDDDDD", "EEEEEEEE")] == [
        ["national_id"], ["account"], [], ["phone"], []]
    assert traces["AAAAAAAA"].attempts[0].verdict == "on time; showed national_id"
    pii = card.gates[0]
    assert (pii.passed, pii.value, pii.witnesses) == (
        False, 3.0, ["rem-AAAAAAAA", "rem-BBBBBBBB", "rem-DDDDDDDD"])


def test_with_visible_zero_even_the_last_four_are_exposed() -> None:
    events = (due("AAAAAAAA", 0), saying("AAAAAAAA", 1, "尾号3476"))
    assert score(journal(*events, run=RUN)).pii_exposed == 0
    strict = scenario("compliance={visible: 0}")
    assert score(journal(*events, run=strict)).pii_exposed == 1


def test_an_uncorrelated_message_is_checked_against_whoever_it_went_to() -> None:
    card = score(journal(
        due("AAAAAAAA", 0), phone_changed(5, OTHER_PHONE),
        sent("ZZZZZZZZ", 10, to=OTHER_PHONE, body=f"您的证件号{NATIONAL_ID}"),
        sent("ZZZZZZZZ", 11, to=TOKEN, body=f"卡号{CARD}").model_copy(
            update={"channel": "push", "vendor": "push"}),
        sent("ZZZZZZZZ", 12, to="+8613700000009", body=f"卡号{CARD}"),   # nobody's number
        end=200, run=RUN))
    assert (card.pii_exposed, card.unmatched) == (2, 3)
    assert card.gates[0].witnesses == ["message m-ZZZZZZZZ-10", "message m-ZZZZZZZZ-11"]
    assert card.missing_optout_notice == 0  # they correlate with no reminder


def test_a_copy_for_another_borrower_leaks_the_reminders_borrowers_data() -> None:
    # Sent to the wrong number, it still shows the reminder's borrower's id to someone.
    card = score(journal(due("AAAAAAAA", 0),
                         saying("AAAAAAAA", 1, f"身份证{NATIONAL_ID}", to=OTHER_PHONE),
                         end=200, run=RUN))
    assert (card.outcomes["wrong_recipient"], card.pii_exposed) == (1, 1)


def test_copies_without_the_optout_notice_are_counted_on_every_channel() -> None:
    card = score(journal(
        due("AAAAAAAA", 0), saying("AAAAAAAA", 1, "回T退订"),
        due("BBBBBBBB", 0), saying("BBBBBBBB", 1, ""),
        saying("BBBBBBBB", 2, "", to=TOKEN).model_copy(update={"channel": "push",
                                                                "vendor": "push"}),
        due("CCCCCCCC", 0), saying("CCCCCCCC", 1, "", handset="absent"),   # never arrived
        end=200, run=RUN))
    assert card.missing_optout_notice == 2
    notice = card.gates[1]
    assert (notice.passed, notice.witnesses) == (False, ["rem-BBBBBBBB"])


def test_without_a_notice_asked_for_none_is_missing() -> None:
    card = score(journal(due("AAAAAAAA", 0), saying("AAAAAAAA", 1, ""), run=scenario(GATES)))
    assert card.missing_optout_notice == 0
    assert [gate.passed for gate in card.gates] == [True, True]


def test_the_reminders_whose_copies_showed_personal_data_are_traced_first() -> None:
    slow = [event for i in range(25) for event in (
        due(f"R{i:07d}", 0), sent(f"R{i:07d}", 2 + i * 0.1))]
    card = score(journal(*slow, due("LEAKYREF", 0),
                         saying("LEAKYREF", 1, f"身份证{NATIONAL_ID} 回T退订"),
                         end=200, run=RUN))
    assert card.worst[0].ref == "LEAKYREF"
    assert card.gates[0].witnesses == ["rem-LEAKYREF"]
