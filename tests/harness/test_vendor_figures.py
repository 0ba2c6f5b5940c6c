"""Vendor figures on the vendor's own send traffic, and SLA terms kept apart from the gates."""

from __future__ import annotations

import pytest

from harness.continuity import score
from tests.harness.journals import call, journal, owed, scenario, sent

WITH_SLA = scenario("slas={sms: {availability: 0.9, p95_latency: 1s}}")


def test_availability_is_over_sends_and_lookups_are_counted_apart() -> None:
    calls = [call(i, "accepted") for i in range(7)]
    calls += [call(8, "rejected", 0.2), call(9, "refused", 0.05), call(10, "lost", 30)]
    calls += [call(11 + i, "read", 0.01) for i in range(30)]
    card = score(journal(calls))
    sms = card.vendors["sms"]
    assert (sms.sends, sms.accepted, sms.rejected, sms.refused, sms.lost, sms.reads) == (
        10, 7, 1, 1, 1, 30)
    assert sms.availability == pytest.approx(0.8)
    assert sms.p95_latency == pytest.approx(0.2)


def test_a_vendor_without_traffic_has_no_figures() -> None:
    backup = score(journal()).vendors["backup"]
    assert (backup.sends, backup.availability, backup.p95_latency) == (0, None, None)


def test_an_sla_breach_is_a_verdict_about_the_vendor_not_a_failed_gate() -> None:
    calls = [call(i, "accepted", 2.0) for i in range(9)] + [call(9, "refused")]
    card = score(journal(calls, owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), run=WITH_SLA))
    assert [(t.vendor, t.term, t.value, t.met) for t in card.slas] == [
        ("sms", "availability >= 0.9", 0.9, True), ("sms", "p95_latency <= 1s", 2.0, False)]
    assert card.sla_breaches == 1
    assert all(gate.passed for gate in card.gates)
    assert card.verdict == "passed"


def test_a_scenario_can_ask_for_sla_breaches_to_fail_the_run() -> None:
    strict = WITH_SLA.model_copy(update={"fail_on_sla_breach": True})
    card = score(journal([call(0, "refused")], owed("AAAAAAAA", 0), sent("AAAAAAAA", 1),
                         run=strict))
    assert card.sla_breaches == 1
    assert all(gate.passed for gate in card.gates)
    assert (card.verdict, card.passed) == ("failed", False)


def test_an_sla_term_with_nothing_to_measure_is_met() -> None:
    card = score(journal(run=WITH_SLA))
    assert all(term.met and term.value is None for term in card.slas)
    assert card.sla_breaches == 0
