"""Each vendor's API as the notifier met it, and the vendor's SLA terms judged on it.

Rules: a vendor's figures are over the calls that send (`sends`: every call but lookups);
lookups of past sends (`read`) are counted apart. Availability = (accepted + rejected) / sends:
a request refused for its own fault was answered. p95 latency is over the sends that got an
answer (not lost). Each SLA term of `scenario.slas` is a verdict about the vendor, never a gate;
a term with nothing to measure (no sends) is met.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from harness.journal import VendorCall
from harness.scenario import Sla
from harness.scorecard import SlaResult, VendorFigures
from harness.timing import percentile


def vendor_figures(calls: Sequence[VendorCall], names: Sequence[str]
                   ) -> dict[str, VendorFigures]:
    """The figures of each vendor in `names` (every one, traffic or not)."""
    return {name: _figures([call for call in calls if call.vendor == name]) for name in names}


def _figures(calls: Sequence[VendorCall]) -> VendorFigures:
    by_outcome = Counter(call.outcome for call in calls)
    sends = [call for call in calls if call.outcome != "read"]
    answered = by_outcome["accepted"] + by_outcome["rejected"]
    return VendorFigures(
        sends=len(sends), accepted=by_outcome["accepted"], rejected=by_outcome["rejected"],
        refused=by_outcome["refused"], lost=by_outcome["lost"], reads=by_outcome["read"],
        availability=round(answered / len(sends), 6) if sends else None,
        p95_latency=percentile([call.latency for call in sends if call.outcome != "lost"], 0.95))


def sla_results(slas: Mapping[str, Sla], vendors: Mapping[str, VendorFigures]
                ) -> list[SlaResult]:
    """One verdict per term of each vendor's SLA."""
    results = []
    for name, sla in slas.items():
        figures = vendors[name]
        if sla.availability is not None:
            value = figures.availability
            results.append(SlaResult(vendor=name, term=f"availability >= {sla.availability:g}",
                                     value=value,
                                     met=value is None or value >= sla.availability))
        if sla.p95_latency is not None:
            value = figures.p95_latency
            results.append(SlaResult(vendor=name, term=f"p95_latency <= {sla.p95_latency:g}s",
                                     value=value,
                                     met=value is None or value <= sla.p95_latency))
    return results
