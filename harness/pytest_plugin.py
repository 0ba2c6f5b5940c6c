"""The pytest plugin: a `rehearse` fixture, a `resilience` marker, failures that show the gates.

Registered through the `pytest11` entry point, so any suite where notifychaos is installed can
write

    def test_failover(rehearse):
        result = rehearse("scenarios/primary-vendor-outage.yaml", overrides={"duration": "60s"})
        assert result.scorecard.continuity >= 0.99

Every test that uses `rehearse` carries the `resilience` marker (`-m "not resilience"` leaves
the slow runs out). When such a test fails, its report gets a "notifychaos" section: each run's
verdict, its failing gates with their measured figures, and the path of its HTML report.

It imports neither Locust nor the run machinery until a test rehearses (suites run with
`-p no:locust`, and plain test runs should not pay for it).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.rehearsal import RunResult
    from harness.scenario import Overrides, Scenario

MARKER = "resilience"
_RESULTS = pytest.StashKey[list["RunResult"]]()


class Rehearser:
    """`rehearse(scenario, overrides=..., out=..., **options) -> RunResult`: `harness.rehearse`
    with run folders under `out` (by default the one given when made), a Toxiproxy server from
    the command line's options, progress printed (pytest shows it for a failing test), and
    every result (an interrupted run's too) handed to `record`."""

    def __init__(self, out: Path, *, record: Callable[[RunResult], None] | None = None,
                 toxiproxy_url: str | None = None, toxiproxy_binary: str | None = None) -> None:
        self.out = out
        self._record = record
        self._toxiproxy = {"toxiproxy_url": toxiproxy_url, "toxiproxy_binary": toxiproxy_binary}

    def __call__(self, scenario: Scenario | Path | str, *, overrides: Overrides = (),
                 out: Path | str | None = None, **options: Any) -> RunResult:
        from harness import rehearsal

        options = {**self._toxiproxy, "progress": _print, **options}
        try:
            result = rehearsal.rehearse(scenario, out=self.out if out is None else out,
                                        overrides=overrides, **options)
        except rehearsal.RunInterrupted as interrupted:
            self.record(interrupted.result)
            raise
        self.record(result)
        return result

    def record(self, result: RunResult) -> None:
        """Show `result` in the failure report (for a run made elsewhere, e.g. by a fixture of
        wider scope)."""
        if self._record is not None:
            self._record(result)


def _print(message: str) -> None:
    print(f"notifychaos: {message}")


def describe(result: RunResult) -> str:
    """A run in a few lines: verdict, failing gates with their measured figures, SLA
    breaches, failed upgrades, why it is inconclusive, and where its report is."""
    card = result.scorecard
    lines = [f"{card.scenario}: {card.verdict} (exit {int(result.exit_code)}), "
             f"continuity {card.continuity:.4f} of {card.owed} owed"]
    failing = [gate for gate in card.gates if not gate.passed]
    if failing:
        lines.append("  failing gates:")
    for gate in failing:
        measured = "not measured" if gate.value is None else f"measured {gate.value:.6g}"
        witnesses = f" ({len(gate.witnesses)} witnesses, e.g. {gate.witnesses[0]})" \
            if gate.witnesses else ""
        lines.append(f"    {gate.expr}: {measured}{witnesses}")
    if card.gates and not failing:
        lines.append(f"  all {len(card.gates)} gates passed")
    lines.extend(f"  SLA breached: {term.vendor} {term.term}"
                 + ("" if term.value is None else f" (measured {term.value:.6g})")
                 for term in card.slas if not term.met)
    lines.extend(f"  upgrade failed: {upgrade.describe()}"
                 for upgrade in card.upgrades if upgrade.failed)
    lines.extend(f"  inconclusive: {reason}" for reason in card.inconclusive)
    lines.append(f"  report: {result.report_html}")
    return "\n".join(lines)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("notifychaos", "notifychaos rehearsals (the rehearse fixture)")
    group.addoption("--notifychaos-out", metavar="DIR", type=Path, default=None,
                    help="make run folders under DIR (default: each test's tmp_path), e.g. to "
                    "keep the HTML reports as CI artifacts")
    group.addoption("--notifychaos-toxiproxy-url", metavar="URL", default=None,
                    help="use this running Toxiproxy server instead of starting one per run")
    group.addoption("--notifychaos-toxiproxy-bin", metavar="PATH", default=None,
                    help="the toxiproxy-server binary to start (default: found)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: a notifychaos rehearsal on real processes (slow); every test "
        "using the rehearse fixture has it, so -m 'not resilience' leaves them out")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Before -m deselects: a test that rehearses is a resilience test without saying so.
    for item in items:
        if "rehearse" in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)


@pytest.fixture
def rehearse(request: pytest.FixtureRequest, tmp_path: Path) -> Rehearser:
    """Run a scenario end to end and score it: `rehearse(path_or_scenario, overrides=...,
    **options) -> RunResult` (options as `harness.rehearse`). Run folders go under the test's
    tmp_path, or under `--notifychaos-out`."""
    config = request.config
    results = request.node.stash.setdefault(_RESULTS, [])
    return Rehearser(config.getoption("notifychaos_out") or tmp_path, record=results.append,
                     toxiproxy_url=config.getoption("notifychaos_toxiproxy_url"),
                     toxiproxy_binary=config.getoption("notifychaos_toxiproxy_bin"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport,
                                                               pytest.TestReport]:
    report = yield
    results = item.stash.get(_RESULTS, [])
    if report.when == "call" and report.failed and results:
        report.sections.append(("notifychaos", "\n".join(map(describe, results))))
    return report
