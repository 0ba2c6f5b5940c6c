"""The run's verdict: each gate with the reminders that prove a failure, the reasons a run
cannot tell, and the final word.

Rules:

- A gate that fails names up to `MAX_WITNESSES` reminders: for an outcome, reminders with that
  outcome; for continuity, reminders not on time; for duplicates, reminders with extra copies;
  for sent_to_opted_out / sent_after_repayment / missing_optout_notice, the reminders sent; for
  pii_exposed, the reminders of the messages that showed personal data (`message <id>` for one
  that correlates with none); for a latency, the slowest.
- Inconclusive: an applied step that touched nothing, or to which no owed reminder was
  exposed.
- The verdict: `not_judged` unless the run completed; for a demonstration
  (`demonstrates`), `failed_as_expected` when the failed gates are exactly the ones it names
  (and no upgrade failed, unless a gate on `failed_upgrades` says so), else `failed`; otherwise
  `failed` when a gate failed, an upgrade step was rolled back (no gate needed: the rehearsal
  failed), or, with `fail_on_sla_breach`, a vendor broke an SLA term; `inconclusive` when there
  is a reason, else `passed`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice

from harness.gates import Gate
from harness.judging import Defect, Judged, Judgement
from harness.scenario import Scenario
from harness.scorecard import OUTCOMES, FaultFigures, GateResult, Scorecard, Verdict

MAX_WITNESSES = 5


def inconclusive_reasons(rows: Sequence[FaultFigures]) -> list[str]:
    """Why the run cannot tell, one reason per problem of a step."""
    reasons = []
    for row in rows:
        name = f"step {row.step} {row.fault} on {row.link}"
        if row.touched == 0:
            reasons.append(f"{name}: touched nothing ({row.effect})")
        if row.exposed == 0:
            reasons.append(f"{name}: no owed reminder was exposed to it")
    return reasons


def gate_results(gates: Sequence[Gate], card: Scorecard, judgement: Judgement
                 ) -> list[GateResult]:
    """Each gate judged on the scorecard, with witnesses when it failed."""
    results = []
    for gate in gates:
        value = card.metric(gate.metric)
        passed = gate.holds(value)
        witnesses = [] if passed else _witnesses(gate.metric, judgement)
        results.append(GateResult(expr=gate.expr, value=value, passed=passed,
                                  witnesses=witnesses))
    return results


def _witnesses(metric: str, judgement: Judgement) -> list[str]:
    settled = judgement.settled
    if metric in OUTCOMES:
        return _ids(judged for judged in settled if judged.outcome == metric)
    if metric == "continuity":
        return _ids(judged for judged in settled if judged.outcome != "on_time")
    if metric == "duplicates":
        return _ids(judged for judged in judgement.reminders if judged.extra_copies)
    if metric in ("sent_to_opted_out", "sent_after_repayment", "sent_to_test_data",
                  "missing_optout_notice"):
        defects: tuple[Defect, ...] = getattr(judgement, metric)
        return _unique(defect.reminder_id for defect in defects)
    if metric == "pii_exposed":
        return _unique(exposure.reminder_id or f"message {exposure.send.message_id}"
                       for exposure in judgement.pii_exposed)
    if metric.endswith("_latency"):
        slowest = sorted((judged for judged in settled if judged.latency is not None),
                         key=lambda judged: -(judged.latency or 0.0))
        return _ids(slowest)
    return []


def _ids(reminders: Iterable[Judged]) -> list[str]:
    return [judged.reminder_id for judged in islice(reminders, MAX_WITNESSES)]


def _unique(ids: Iterable[str | None]) -> list[str]:
    found: list[str] = []
    for rid in ids:
        if rid is not None and rid not in found:
            found.append(rid)
            if len(found) == MAX_WITNESSES:
                break
    return found


def verdict(card: Scorecard, scenario: Scenario) -> Verdict:
    """The final word on a scored run."""
    if card.status != "completed":
        return "not_judged"
    failed = {gate.expr for gate in card.gates if not gate.passed}
    # A failed upgrade fails the rehearsal by itself; a gate on it decides instead.
    upgrade_failed = card.failed_upgrades > 0 and all(
        gate.metric != "failed_upgrades" for gate in scenario.gates)
    if scenario.demonstrates is not None:
        expected = {gate.expr for gate in scenario.demonstrates.fails}
        return "failed_as_expected" if failed == expected and not upgrade_failed else "failed"
    if failed or upgrade_failed or (scenario.fail_on_sla_breach and card.sla_breaches):
        return "failed"
    return "inconclusive" if card.inconclusive else "passed"
