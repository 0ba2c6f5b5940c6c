"""Comparing two runs' fates: what each reminder's fate is, the first that differs, and what
timing decides (a send near a fault's start or end, a reminder one run did not schedule)."""

from __future__ import annotations

from harness.determinism import Edges, Fate, boundaries, compare, fates
from harness.journal import BorrowerOptedOut, FaultTouched, MockFaultsChanged
from tests.harness.journals import T0, journal, owed, sent, step


def _drop(ref: str, at: float) -> FaultTouched:
    return FaultTouched(t=T0 + at, mock="sms", switch="drop", subject=f"m-{ref}-{at}")


def test_a_fate_is_the_outcome_each_copy_and_what_touched_the_reminder() -> None:
    found = fates(journal(
        owed("AAAAAAAA", 0), sent("AAAAAAAA", 1, handset="dropped"), _drop("AAAAAAAA", 1),
        owed("BBBBBBBB", 0, phone="+8613800000002", borrower="B2"),
        sent("BBBBBBBB", 1, to="+8613800000002", handset="absent"),
        owed("CCCCCCCC", 0, phone="+8613800000003", borrower="B3"),
        sent("CCCCCCCC", 1, to="+8613800000003"),
        BorrowerOptedOut(t=T0 + 3, phone="+8613800000003", vendor="sms"),
        FaultTouched(t=T0 + 0.5, mock="ledger", switch="drift", subject="rem-CCCCCCCC"),
        owed("DDDDDDDD", 0, phone="+8613800000004", borrower="B4")))
    assert [fate.describe() for fate in found.values()] == [
        "missed: sms dropped (drop)", "unreachable: sms absent",
        "on_time: sms delivered; ledger drift; STOP", "missed: nothing sent"]
    assert list(found) == ["rem-AAAAAAAA", "rem-BBBBBBBB", "rem-CCCCCCCC", "rem-DDDDDDDD"]


def _fate(rid: str, outcome: str, *sent: float) -> Fate:
    return Fate(rid, outcome, ("sms delivered",), (), sent or (T0 + 5,), (T0,))


def test_the_same_fates_in_both_runs_are_deterministic() -> None:
    run = {"r1": _fate("r1", "on_time"), "r2": _fate("r2", "missed")}
    # The second run sent at other moments: times are not part of a fate.
    later = {rid: Fate(f.reminder_id, f.outcome, f.copies, f.touches, (T0 + 9,), (T0 + 4,))
             for rid, f in run.items()}
    comparison = compare(run, later)
    assert comparison.same and comparison.compared == 2
    assert comparison.describe() == ["deterministic: 2 reminders, same fates"]


def test_the_first_reminder_whose_fate_differs_is_named() -> None:
    first = {rid: _fate(rid, "on_time") for rid in ("r1", "r2", "r3")}
    second = {"r1": first["r1"], "r2": _fate("r2", "missed"), "r3": _fate("r3", "late")}
    comparison = compare(first, second)
    assert not comparison.same
    assert [d.reminder_id for d in comparison.differences] == ["r2", "r3"]
    assert comparison.describe()[0] == (
        "NOT deterministic: 2 of 3 reminders differ; the first: r2: run 1 on_time: sms "
        "delivered; run 2 missed: sms delivered")


def test_timing_decides_near_a_fault_edge_and_for_reminders_one_run_lacks() -> None:
    first = {"r1": _fate("r1", "missed", T0 + 10.4), "r2": _fate("r2", "on_time"),
             "r3": _fate("r3", "on_time")}
    second = {"r1": _fate("r1", "on_time", T0 + 11.5), "r2": _fate("r2", "on_time")}
    # r1 was sent 0.4 s before the first run's fault ended: whether the fault caught it is a
    # race, so its differing fate is timing's, not the seed's.
    comparison = compare(first, second, Edges(sends=(T0 + 10.8,)), Edges(sends=(T0 + 10.9,)))
    assert comparison.same and comparison.compared == 1
    assert [d.reminder_id for d in comparison.timing] == ["r1"]
    assert comparison.one_run_only == ("r3",)
    assert comparison.describe() == [
        "deterministic: 1 reminders, same fates",
        "1 reminders within 1s of a fault's start or end not compared (timing decides whether "
        "the fault caught them); 1 of them differ",
        "1 reminders scheduled in one run only (the load ticked a different number of times): "
        "r3"]


def test_fault_edges_are_where_steps_and_mock_switches_took_effect() -> None:
    run = journal(step(0, "vendor.drop", "vendors.sms", 5, 15),
                  step(1, "data.drift", "ledger", 20, 30),
                  MockFaultsChanged(t=T0 + 5.01, mock="sms", faults={"drop": 0.3}),
                  MockFaultsChanged(t=T0 + 20.01, mock="ledger", faults={"drift": 0.2}))
    assert boundaries(run) == Edges(sends=(T0 + 5, T0 + 5.01, T0 + 15),
                                    records=(T0 + 20, T0 + 20.01, T0 + 30))


def test_a_record_replicated_near_a_data_fault_edge_is_timing_s() -> None:
    first = {"r1": Fate("r1", "wrong_recipient", ("sms delivered",), ("ledger drift",),
                        (T0 + 15,), (T0 + 10.2,))}
    second = {"r1": Fate("r1", "on_time", ("sms delivered",), (), (T0 + 15,), (T0 + 10.3,))}
    # Its send was far from any edge, but its record was replicated as the drift began.
    comparison = compare(first, second, Edges(records=(T0 + 10,)), Edges(records=(T0 + 10,)))
    assert (comparison.compared, comparison.near_boundary, comparison.same) == (0, 1, True)
    # Against the sends' edges alone, the same difference is the seed's.
    assert not compare(first, second, Edges(sends=(T0 + 10,)), Edges(sends=(T0 + 10,))).same
