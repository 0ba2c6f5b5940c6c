"""The scorecard's figures as a fold: reminders fed in any order, one by one, as the pure
judge's `Judged`, the engine's rows or the fast lane's values, give the scorecard made from all
of them at once."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from harness import continuity
from harness.continuity import Facts, card, fold_for, judge_run, score
from harness.fault_rows import step_runs
from harness.fold import Fold, Row
from harness.journal import Event, FaultTouched, Journal, RunStarted
from harness.scorecard import OUTCOMES
from harness.verdict import MAX_WITNESSES
from tests.harness.journals import OTHER_PHONE, T0, journal, owed, scenario, sent, step

RUN = scenario(
    "duration=120s",
    "timeline=[{at: 30s, for: 30s, fault: proxy.down, link: vendors.sms},"
    " {at: 40s, for: 20s, fault: process.stop, link: target},"
    " {at: 70s, for: 10s, fault: data.drift, link: ledger, params: {field: amount}},"
    " {at: 90s, fault: process.restart, link: target}]",
    # Every gate fails, so that every kind of witness is named.
    "gates=[continuity >= 1, late == 0, missed == 0, wrong_recipient == 0, duplicates == 0,"
    " p95_latency <= 0s, p99_latency <= 0s]")


def _run(seed: int) -> Journal:
    """About 60 reminders over the run, each on time, late, missed, duplicated, filtered or
    sent to a wrong number, drawn from `seed`."""
    draw = random.Random(seed)
    events: list[Event | list[Event]] = [
        step(0, "proxy.down", "vendors.sms", 30, 60), step(1, "process.stop", "target", 40, 60),
        step(2, "data.drift", "ledger", 70, 80, {"field": "amount"}),
        step(3, "process.restart", "target", 90, None)]
    for index in range(60):
        ref = f"R{index:07d}"
        at = round(draw.uniform(1, 110), 3)
        events.append(owed(ref, at, borrower=f"B{index}", phone=f"+86138{index:08d}"))
        kind = draw.choice(["on_time", "on_time", "late", "missed", "twice", "spam", "wrong"])
        to = f"+86138{index:08d}"
        if kind == "on_time":
            events.append(sent(ref, at + draw.uniform(0, 5), to=to, arrive=draw.uniform(0, 3)))
        elif kind == "late":
            events.append(sent(ref, at + 12, to=to))
        elif kind == "twice":
            events += [sent(ref, at + 1, to=to), sent(ref, at + 2, to=to)]
        elif kind == "spam":
            events.append(sent(ref, at + 1, to=to, handset="spam"))
        elif kind == "wrong":
            events.append(sent(ref, at + 1, to=OTHER_PHONE))
        if 70 <= at <= 80 and draw.random() < 0.5:
            events.append(FaultTouched(t=T0 + at, mock="ledger", switch="drift",
                                       subject=f"rem-{ref}", detail={"field": "amount"}))
    return journal(*events, end=130, run=RUN)


def _facts(run: Journal) -> Facts:
    """The facts the pure scorer makes its scorecard of."""
    found: list[Facts] = []
    made = continuity.card

    def recorded(journal: Journal, facts: Facts) -> object:
        found.append(facts)
        return made(journal, facts)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(continuity, "card", recorded)
        score(run)
    (facts,) = found
    return facts


def _fold(run: Journal) -> Fold:
    started = run.first(RunStarted)
    assert started is not None
    return fold_for(run, started.scenario, step_runs(run, started.scenario, T0 + 130))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_card_of_reminders_fed_in_any_order_and_form_is_the_pure_scorers(seed: int) -> None:
    run = _run(seed)
    expected = score(run)
    assert all(not gate.passed and gate.witnesses for gate in expected.gates)
    assert sum(row.exposed for row in expected.faults) > 0
    assert expected.delivered_after_maintenance is not None
    facts = _facts(run)
    reminders = list(enumerate(judge_run(run).reminders))
    for shuffle in range(4):
        random.Random(shuffle).shuffle(reminders)
        fold = _fold(run)
        for place, (order, judged) in enumerate(reminders):
            # As the pure judge gives it, as a partition's row, or as the fast lane's values.
            if place % 3 == 0:
                fold.add(judged, order)
            elif place % 3 == 1:
                fold.add(Row.of(judged, order), order)
            else:
                fold.add_row(*Row.of(judged, order).__reduce__()[1])
        assert card(run, replace(facts, folded=fold.done())) == expected


def test_the_fold_keeps_a_few_witnesses_whatever_the_number_of_reminders() -> None:
    run = _run(4)
    judged = judge_run(run).reminders
    fold = _fold(run)
    for copy in range(50):  # 3,000 reminders, each a settled row
        for order, one in enumerate(judged):
            if one.settled:
                fold.add(Row.of(one, copy * len(judged) + order), copy * len(judged) + order)
    folded = fold.done()
    assert folded.owed == 50 * sum(1 for one in judged if one.settled)
    assert len(folded.witnesses) <= (len(OUTCOMES) + 3) * MAX_WITNESSES
    assert list(folded.remind_at) == sorted(folded.remind_at)
