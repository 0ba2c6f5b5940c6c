"""Gates with their witnesses, and the verdict of a run."""

from __future__ import annotations

from harness.continuity import score
from harness.journal import BorrowerOptedOut, ReminderChanged
from tests.harness.journals import BASE, PHONE, T0, journal, owed, scenario, sent

DEMO = scenario(text=BASE + "demonstrates: {fails: [duplicates == 0], passed_by: reference}\n")


def test_gates_are_judged_and_decide_the_verdict() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), sent("AAAAAAAA", 2)))
    assert [(g.expr, g.value, g.passed, g.witnesses) for g in card.gates] == [
        ("continuity >= 0.5", 1.0, True, []), ("duplicates == 0", 1.0, False, ["rem-AAAAAAAA"]),
        ("p95_latency <= 5s", 1.0, True, [])]
    assert (card.verdict, card.passed) == ("failed", False)


def test_a_failed_continuity_gate_names_up_to_five_reminders_not_on_time() -> None:
    refs = [f"R{i:07d}" for i in range(8)]
    card = score(journal(*(owed(ref, i) for i, ref in enumerate(refs)),
                         sent(refs[0], 0)))
    continuity = card.gates[0]
    assert continuity.passed is False
    assert continuity.witnesses == [f"rem-{ref}" for ref in refs[1:6]]


def test_outcome_latency_and_defect_gates_name_their_reminders() -> None:
    run = scenario("gates=[missed == 0, p95_latency <= 2s, sent_to_opted_out == 0, "
                   "sent_after_repayment == 0, unmatched == 0]")
    card = score(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 0, arrive=3),
        owed("BBBBBBBB", 0, borrower="B2", phone="+8613700000003"),
        owed("CCCCCCCC", 10, scheduled=0),
        ReminderChanged(t=T0 + 2, reminder_id="rem-CCCCCCCC", change="repaid", amount="0.00"),
        sent("CCCCCCCC", 10),
        BorrowerOptedOut(t=T0 + 20, phone=PHONE, vendor="sms"),
        owed("DDDDDDDD", 30), sent("DDDDDDDD", 30),
        sent("ZZZZZZZZ", 31),
        run=run))
    witnesses = {g.expr: g.witnesses for g in card.gates if not g.passed}
    assert witnesses == {
        "missed == 0": ["rem-BBBBBBBB"],
        "p95_latency <= 2s": ["rem-AAAAAAAA"],
        "sent_to_opted_out == 0": ["rem-DDDDDDDD"],
        "sent_after_repayment == 0": ["rem-CCCCCCCC"],
        "unmatched == 0": [],
    }


def test_an_interrupted_run_is_not_judged() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), status="interrupted"))
    assert all(gate.passed for gate in card.gates)
    assert card.status == "interrupted"
    assert (card.verdict, card.passed) == ("not_judged", False)


def test_a_run_with_nothing_owed_fails_the_continuity_gate() -> None:
    card = score(journal())
    assert (card.owed, card.continuity) == (0, 0.0)
    assert card.gates[0].passed is False
    assert card.verdict == "failed"


def test_a_demonstration_that_fails_exactly_its_gates_failed_as_expected() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), sent("AAAAAAAA", 2),
                         run=DEMO))
    assert (card.verdict, card.passed) == ("failed_as_expected", True)


def test_a_demonstration_that_passes_or_fails_otherwise_failed() -> None:
    passing = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), run=DEMO))
    assert (passing.verdict, passing.passed) == ("failed", False)
    more = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), sent("AAAAAAAA", 2),
                         owed("BBBBBBBB", 0), owed("CCCCCCCC", 0), run=DEMO))
    assert [g.expr for g in more.gates if not g.passed] == ["continuity >= 0.5",
                                                             "duplicates == 0"]
    assert (more.verdict, more.passed) == ("failed", False)


def test_a_clean_run_passes() -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1)))
    assert (card.verdict, card.passed, card.inconclusive) == ("passed", True, [])
