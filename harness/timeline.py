"""Plays the fault timeline: applies each step at its time, undoes it at its end, always."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from harness.errors import FaultInjectionError, StartupError
from harness.faults import FAULTS, MOCK_FAULTS
from harness.journal import FaultApplied, FaultReverted, JournalWriter
from harness.scenario import Step
from harness.target import RunningTarget
from harness.toxiproxy import ToxiproxyControl


class Injector(Protocol):
    """Carries out faults of some family (network, vendor, data, process)."""

    def apply(self, index: int, step: Step) -> None:
        """Make the fault take effect now."""

    def revert(self, index: int, step: Step) -> None:
        """Undo the fault."""


class NetworkInjector:
    """Network faults on Toxiproxy links: `proxy.down` disables a link, the rest add a toxic."""

    def __init__(self, control: ToxiproxyControl) -> None:
        self._control = control

    def apply(self, index: int, step: Step) -> None:
        kind = FAULTS[step.fault]
        if kind.toxic is None:
            self._control.disable(step.link)
            return
        self._control.add_toxic(
            step.link, f"step{index}", type=kind.toxic,
            stream=str(step.params.get("stream", "downstream")),
            toxicity=float(step.params.get("toxicity", 1.0)),
            attributes={name: int(step.params.get(name, 0)) for name in kind.attributes})

    def revert(self, index: int, step: Step) -> None:
        if FAULTS[step.fault].toxic is None:
            self._control.enable(step.link)
        else:
            self._control.remove_toxic(step.link, f"step{index}")


class ControlInjector:
    """Vendor and data faults, switched through a mock's control API (a vendor, the ledger).

    Steps on one mock may overlap: it gets the union of the steps in force, so ending one step
    leaves the others as they were.
    """

    def __init__(self, control_urls: Mapping[str, str], ca_bundle: str,
                 timeout: float = 5.0) -> None:
        self._urls = dict(control_urls)  # link → control URL
        self._timeout = timeout
        self._tls = ssl.create_default_context(cafile=ca_bundle)  # HTTPS vendors' test CA
        self._active: dict[str, dict[int, dict[str, Any]]] = {}

    def apply(self, index: int, step: Step) -> None:
        switches = FAULTS[step.fault].switches
        assert switches is not None
        self._active.setdefault(step.link, {})[index] = switches(step.params)
        self._push(step)

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
                                 verify=self._tls)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise FaultInjectionError(f"{step.link}: control API {url}: {exc}") from None


class ProcessInjector:
    """Process faults on the target: pause and resume, kill and start again, restart."""

    def __init__(self, target: RunningTarget) -> None:
        self._target = target

    def apply(self, index: int, step: Step) -> None:
        actions = {"process.pause": self._target.pause, "process.kill": self._target.kill,
                   "process.restart": self._target.restart}
        self._call(actions[step.fault], step)

    def revert(self, index: int, step: Step) -> None:
        actions = {"process.pause": self._target.resume, "process.kill": self._target.start}
        if step.fault in actions:
            self._call(actions[step.fault], step)

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

    def apply(self, index: int, step: Step) -> None:
        self._injectors[FAULTS[step.fault].family].apply(index, step)

    def revert(self, index: int, step: Step) -> None:
        self._injectors[FAULTS[step.fault].family].revert(index, step)


@dataclass(frozen=True)
class _Action:
    at: float
    apply: bool
    index: int
    step: Step


class TimelinePlayer:
    """Runs the steps in a background thread against `t0`; `stop()` undoes whatever is active."""

    def __init__(self, steps: list[Step], injector: Injector, journal: JournalWriter) -> None:
        self._injector = injector
        self._journal = journal
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[int, Step] = {}
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
            self._injector.apply(index, step)
        except FaultInjectionError as exc:
            self.errors.append(f"step {index} ({step.fault} on {step.link}): {exc}")
            return
        self._active[index] = step
        self._journal.write(FaultApplied(step=index, fault=step.fault, link=step.link,
                                         params=step.params))
        if FAULTS[step.fault].instant:
            self._revert(index)

    def _revert(self, index: int) -> None:
        step = self._active.pop(index)
        error = None
        try:
            self._injector.revert(index, step)
        except FaultInjectionError as exc:
            error = str(exc)
            self.errors.append(f"undo step {index} ({step.fault} on {step.link}): {exc}")
        self._journal.write(FaultReverted(step=index, fault=step.fault, link=step.link,
                                          error=error))

    def stop(self) -> None:
        """Stop playing and undo every step still in effect (the run is ending)."""
        self._stop.set()
        with self._lock:
            for index in list(self._active):
                self._revert(index)
        self._thread.join(timeout=30)
