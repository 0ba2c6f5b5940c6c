"""notifychaos's public API: rehearse a scenario, score a run again, compare a rehearsal with
its baseline, and the errors it raises.

    from harness import rehearse

    result = rehearse("scenarios/primary-vendor-outage.yaml", overrides={"duration": "30s"})
    assert result.scorecard.continuity >= 0.99, result.report_html

The names in `__all__` are the API; the modules under `harness` are its implementation.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from harness.comparison import Comparison, compare
    from harness.errors import (
        ComponentError,
        ComponentLostError,
        FaultInjectionError,
        JournalError,
        LoadError,
        NotifyChaosError,
        ScenarioError,
        StartupError,
    )
    from harness.rehearsal import (
        ExitCode,
        RunInterrupted,
        RunResult,
        rehearse,
        score,
        write_reports,
    )
    from harness.scenario import Scenario, load_scenario
    from harness.scorecard import Scorecard

__all__ = [
    "Comparison",
    "ComponentError",
    "ComponentLostError",
    "ExitCode",
    "FaultInjectionError",
    "JournalError",
    "LoadError",
    "NotifyChaosError",
    "RunInterrupted",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "Scorecard",
    "StartupError",
    "compare",
    "load_scenario",
    "rehearse",
    "score",
    "write_reports",
]

# Each name is imported on first use: the mock process imports `harness.journal` (which runs
# this file first) from `mocks`, and must neither load the run machinery nor import `mocks`
# back while `mocks` is still half loaded.
_HOMES = {
    "Comparison": "harness.comparison",
    "ComponentError": "harness.errors",
    "ComponentLostError": "harness.errors",
    "ExitCode": "harness.rehearsal",
    "FaultInjectionError": "harness.errors",
    "JournalError": "harness.errors",
    "LoadError": "harness.errors",
    "NotifyChaosError": "harness.errors",
    "RunInterrupted": "harness.rehearsal",
    "RunResult": "harness.rehearsal",
    "Scenario": "harness.scenario",
    "ScenarioError": "harness.errors",
    "Scorecard": "harness.scorecard",
    "StartupError": "harness.errors",
    "compare": "harness.comparison",
    "load_scenario": "harness.scenario",
    "rehearse": "harness.rehearsal",
    "score": "harness.rehearsal",
    "write_reports": "harness.rehearsal",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(_importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # pytest, loading our plugin, rewrites this package and leaves `@py_builtins` behind.
    return sorted({*(name for name in globals() if name.isidentifier()), *__all__})
