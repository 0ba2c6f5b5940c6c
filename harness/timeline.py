"""Plays the fault timeline: applies each step at its time, undoes it at its end, always.

Each step's measured effect is journaled after it took effect: the injector that carried it out
returns what it measured (a process fault: whether a live process got the signal) or how to
measure it (a network fault: canary probes), which the player runs off the timeline thread.
Vendor and data faults are measured by the mocks themselves (`fault.touched`).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from harness.canary import Canary
from harness.errors import FaultInjectionError, StartupError
from harness.faults import FAULTS, MOCK_FAULTS
from harness.journal import FaultApplied, FaultMeasured, FaultReverted, JournalWriter
from harness.scenario import Step
from harness.target import TargetBackend
from harness.toxiproxy import ToxiproxyControl
from mocks.manifest import TOKEN_HEADER

Measure = Callable[[], FaultMeasured]
"""Measures a step's effect; may take seconds (canary probes), so it runs off the timeline."""

Effect = FaultMeasured | Measure | None
"""What applying a step returns: its measured effect, how to measure it, or nothing to add."""


class Injector(Protocol):
    """Carries out faults of some family (network, vendor, data, process)."""

    def apply(self, index: int, step: Step) -> Effect:
        """Make the fault take effect now; return its measured effect or how to measure it
        (None when the injector measures nothing itself)."""

    def revert(self, index: int, step: Step) -> None:
        """Undo the fault."""


class NetworkInjector:
    """Network faults on Toxiproxy links: `proxy.down` disables a link, the rest add a toxic;
    each step is then measured by canary probes through the link."""

    def __init__(self, control: ToxiproxyControl, canary: Canary) -> None:
        self._control = control
        self._canary = canary

    def apply(self, index: int, step: Step) -> Measure:
        kind = FAULTS[step.fault]
        if kind.toxic is None:
            self._control.disable(step.link)
        else:
            self._control.add_toxic(
                step.link, f"step{index}", type=kind.toxic,
                stream=str(step.params.get("stream", "downstream")),
                toxicity=float(step.params.get("toxicity", 1.0)),
                attributes={name: int(step.params.get(name, 0)) for name in kind.attributes})
        return lambda: self._canary.measure(index, step)

    def revert(self, index: int, step: Step) -> None:
        if FAULTS[step.fault].toxic is None:
            self._control.enable(step.link)
        else:
            self._control.remove_toxic(step.link, f"step{index}")


class ControlInjector:
    """Vendor and data faults, switched through a mock's control API (a vendor, the ledger).

    Steps on one mock may overlap: it gets the union of the steps in force, so ending one step
    leaves the others as they were. Every call carries the run's `token`.
    """

    def __init__(self, control_urls: Mapping[str, str], ca_bundle: str, token: str,
                 timeout: float = 5.0) -> None:
        self._urls = dict(control_urls)  # link → control URL
        self._headers = {TOKEN_HEADER: token}
        self._timeout = timeout
        self._tls = ssl.create_default_context(cafile=ca_bundle)  # HTTPS vendors' test CA
        self._active: dict[str, dict[int, dict[str, Any]]] = {}

    def apply(self, index: int, step: Step) -> None:
        switches = FAULTS[step.fault].switches
        assert switches is not None
        self._active.setdefault(step.link, {})[index] = switches(step.params)
        self._push(step)  # the mock journals what its switches touch

    def revert(self, index: int, step: Step) -> None:
        self._active.get(step.link, {}).pop(index, None)
        self._push(step)

    def _push(self, step: Step) -> None:
        merged: dict[str, Any] = {}
        for switches in self._active.get(step.link, {}).values():
            merged |= switches
        faults = MOCK_FAULTS[FAULTS[step.fault].family].model_validate(merged)
        url = self._urls[step.link]
        try:
            response = httpx.put(url, content=faults.model_dump_json(), timeout=self._timeout,
                                 verify=self._tls, headers=self._headers)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise FaultInjectionError(f"{step.link}: control API {url}: {exc}") from None


class ProcessInjector:
    """Process faults on an instance of the target (a process or a container), the one the
    step's link names (`instance_for`): pause and resume, kill and start again, restart, stop
    cleanly and start again. Each is measured by whether it reached a live instance.

    Once the run `end`s, a kill or stop undone leaves its instance down: the teardown stops
    every instance, and starting one only to stop it would keep the run waiting for nothing.
    Nor is an instance undone when it is no longer the one the step hit (an upgrade cut it over
    to version B meanwhile, which is running), or when it runs again already.
    """

    def __init__(self, instance_for: Callable[[str], TargetBackend]) -> None:
        self._instance_for = instance_for
        self._ending = threading.Event()
        self._hit: dict[int, TargetBackend] = {}

    def apply(self, index: int, step: Step) -> FaultMeasured:
        target = self._hit[index] = self._instance_for(step.link)
        actions = {"process.pause": target.pause, "process.kill": target.kill,
                   "process.restart": target.restart, "process.stop": target.halt}
        before = target.current()
        self._call(actions[step.fault], step)
        # A lone instance's link is the target itself; another names the instance it hit.
        where = "" if step.link == "target" else f" ({step.link})"
        detail = f"{target.verb(step.fault)} to {before.name}{where}"
        if before.exit_code is not None:
            detail += f", which had already ended (exit code {before.exit_code})"
        elif step.fault == "process.restart":
            detail += f", started again as {target.current().name}"
        return FaultMeasured(step=index, probes=1, affected=int(before.exit_code is None),
                             detail=detail)

    def revert(self, index: int, step: Step) -> None:
        target = self._instance_for(step.link)
        if self._hit.pop(index, target) is not target:
            return
        if step.fault == "process.pause":
            self._call(target.resume, step)
        elif step.fault in ("process.kill", "process.stop") and not self._ending.is_set():
            now = target.current()
            if now.pid is None or now.exit_code is not None:  # not running (a removed container)
                self._call(target.start, step)

    def end(self) -> None:
        """The run is ending: from now on, no step's undo starts an instance again."""
        self._ending.set()

    @staticmethod
    def _call(action: Callable[[], None], step: Step) -> None:
        try:
            action()
        except StartupError as exc:
            raise FaultInjectionError(f"{step.fault}: the target did not come back: {exc}")\
                from None


class FamilyInjector:
    """Sends each step to the injector of its fault's family."""

    def __init__(self, injectors: Mapping[str, Injector]) -> None:
        self._injectors = dict(injectors)

    def apply(self, index: int, step: Step) -> Effect:
        return self._injectors[FAULTS[step.fault].family].apply(index, step)

    def revert(self, index: int, step: Step) -> None:
        self._injectors[FAULTS[step.fault].family].revert(index, step)


@dataclass(frozen=True)
class _Action:
    at: float
    apply: bool
    index: int
    step: Step


class TimelinePlayer:
    """Runs the steps in a background thread against `t0`; `stop()` undoes whatever is active.

    Measurements run in threads of their own, so a step's canary never delays the next step;
    `stop()` waits for them (up to `measure_timeout`) before the journal may close. A step that
    cannot be applied or undone is added to `errors` and told to `on_error` when it happens.
    """

    def __init__(self, steps: list[Step], injector: Injector, journal: JournalWriter,
                 measure_timeout: float = 10.0,
                 on_error: Callable[[str], None] | None = None) -> None:
        self._injector = injector
        self._on_error = on_error
        self._journal = journal
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[int, Step] = {}
        self._measuring: list[threading.Thread] = []
        self._measure_timeout = measure_timeout
        self._journal_lock = threading.Lock()
        self._journal_open = True
        actions = [_Action(step.at, True, i, step) for i, step in enumerate(steps)]
        actions += [_Action(step.at + step.duration, False, i, step)
                    for i, step in enumerate(steps) if step.duration is not None]
        # At equal times, undo before applying so back-to-back steps on one link do not clash.
        self._actions = sorted(actions, key=lambda a: (a.at, a.apply, a.index))
        self._thread = threading.Thread(target=self._play, name="timeline", daemon=True)
        self._t0 = 0.0
        self.errors: list[str] = []

    def start(self, t0: float) -> None:
        """Begin playing; step times count from `t0` (a time.monotonic() value)."""
        self._t0 = t0
        self._thread.start()

    def _play(self) -> None:
        for action in self._actions:
            if self._stop.wait(max(0.0, self._t0 + action.at - time.monotonic())):
                return
            with self._lock:
                if self._stop.is_set():
                    return
                if action.apply:
                    self._apply(action.index, action.step)
                elif action.index in self._active:
                    self._revert(action.index)

    def _apply(self, index: int, step: Step) -> None:
        try:
            effect = self._injector.apply(index, step)
        except FaultInjectionError as exc:
            self._failed(f"step {index} ({step.fault} on {step.link}): {exc}")
            return
        self._active[index] = step
        self._journal.write(FaultApplied(step=index, fault=step.fault, link=step.link,
                                         params=step.params))
        if isinstance(effect, FaultMeasured):
            self._journal.write(effect)
        elif effect is not None:
            thread = threading.Thread(target=self._measure, args=(index, effect),
                                      name=f"measure-step{index}", daemon=True)
            self._measuring.append(thread)
            thread.start()
        if FAULTS[step.fault].instant:
            self._revert(index)

    def _failed(self, error: str) -> None:
        # Kept for the end of the load, and told at once so that a person watching sees it now.
        self.errors.append(error)
        if self._on_error is not None:
            self._on_error(error)

    def _measure(self, index: int, measure: Measure) -> None:
        try:
            measured = measure()
        except Exception as exc:  # a measurement that fails says so; it never fails the run
            measured = FaultMeasured(step=index, probes=0, affected=0,
                                     detail=f"not measured: {type(exc).__name__}: {exc}")
        with self._journal_lock:
            if self._journal_open:
                self._journal.write(measured)

    def _revert(self, index: int) -> None:
        step = self._active.pop(index)
        error = None
        try:
            self._injector.revert(index, step)
        except FaultInjectionError as exc:
            error = str(exc)
            self._failed(f"undo step {index} ({step.fault} on {step.link}): {exc}")
        self._journal.write(FaultReverted(step=index, fault=step.fault, link=step.link,
                                          error=error))

    def stop(self) -> None:
        """Stop playing, undo every step still in effect (the run is ending), and wait for the
        measurements under way; one still running after that is not journaled."""
        self._stop.set()
        with self._lock:
            for index in list(self._active):
                self._revert(index)
        if self._thread.ident is not None:  # a run stopped before its load began never started it
            self._thread.join(timeout=30)
        deadline = time.monotonic() + self._measure_timeout
        for thread in self._measuring:
            thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        with self._journal_lock:
            self._journal_open = False
