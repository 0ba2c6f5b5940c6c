"""One run of a scenario: bring up the topology, play faults and load, record, tear down, always."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from harness import runlock, settling
from harness.canary import Canary
from harness.clock import Clock, clocked, describe_pacing, staging, tell_ledger
from harness.errors import (
    ComponentLostError,
    FaultInjectionError,
    LoadError,
    NotifyChaosError,
    StartupError,
)
from harness.instances import Instances, instance_values
from harness.journal import (
    JOURNAL_SCHEMA,
    ComponentReady,
    JournalWriter,
    LoadFinished,
    LoadStarted,
    RunEnded,
    RunStarted,
)
from harness.loadgen import LoadGenerator, LoadTotals
from harness.processes import ManagedProcess, free_port, poll_until
from harness.scenario import Scenario
from harness.target import AddressBook, Layers
from harness.timeline import (
    ControlInjector,
    FamilyInjector,
    NetworkInjector,
    ProcessInjector,
    TimelinePlayer,
)
from harness.toxiproxy import Link, ToxiproxyControl, ToxiproxyServer, find_server
from harness.upgrade import UpgradeInjector
from harness.versions import run_versions
from mocks.manifest import Manifest, MocksConfig
from mocks.private import write_private

Say = Callable[[str], None]

WATCH_EVERY = 0.5
"""How often (seconds) the run looks at the harness's own processes during the load and drain."""

FAULT_INJECTION_FAILED = "fault injection failed: "
"""How `say` begins a fault-injection error, told when it happens (the run still fails with
FaultInjectionError once the load ends)."""


@dataclass(frozen=True)
class RunOptions:
    """How to run: where reports go and which Toxiproxy server to use."""

    out: Path = Path("reports")
    toxiproxy_url: str | None = None
    toxiproxy_binary: str | None = None


def new_run_dir(out: Path, name: str) -> Path:
    """A fresh folder `<out>/<name>-<timestamp>` with `journal/` and `logs/` inside."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in ("", *(f"-{n}" for n in range(2, 100))):
        run_dir = out / f"{name}-{stamp}{suffix}"
        with contextlib.suppress(FileExistsError):
            run_dir.mkdir(parents=True)
            (run_dir / "journal").mkdir()
            (run_dir / "logs").mkdir()
            return run_dir.resolve()
    raise StartupError("run", f"cannot make a run folder under {out}")


class Run:
    """A rehearsal in progress. `execute()` returns when the run is over and everything stopped.

    Whatever happens (a gate-worthy failure, a component that never starts, Ctrl-C), the journal
    ends with `run.ended` and every process, proxy and toxic is gone. A run lock (with its
    watchdog) names what the run holds, so that even a harness killed outright leaves nothing.
    """

    def __init__(self, scenario: Scenario, run_dir: Path, options: RunOptions, say: Say) -> None:
        self.scenario = scenario
        self.run_dir = run_dir
        self.options = options
        self.say = say
        self.run_id = f"nc-{secrets.token_hex(4)}"
        self.journal = JournalWriter(run_dir / "journal", "harness")
        self.logs = run_dir / "logs"
        self._load_totals: LoadTotals | None = None
        self.left_running: tuple[str, ...] = ()
        """What the run could not stop (empty unless someone else owns a process it started)."""
        self._harness_processes: list[ManagedProcess] = []
        """The mocks and the Toxiproxy server it started: the run is void if one of them dies."""
        self._load_began = 0.0

    def execute(self) -> None:
        """Run the scenario to its end; errors and Ctrl-C are re-raised after the teardown."""
        for line in runlock.recover_dead_runs(self.options.out):
            self.say(line)
        lock = runlock.RunLock(self.run_dir, self.run_id)
        try:
            with runlock.using(lock):
                self._execute(lock)
        finally:
            released = lock.release()
            if released.stopped:
                self.say(f"stopped what the teardown left: {released.stopped.describe()}")
            self.left_running = released.remaining
            if released.remaining:
                self.say(f"could not stop: {', '.join(released.remaining)}")

    def _execute(self, lock: runlock.RunLock) -> None:
        self.journal.write(RunStarted(scenario=self.scenario, versions=run_versions(),
                                      schema_version=JOURNAL_SCHEMA))
        status: Literal["completed", "interrupted", "failed"] = "failed"
        reason = ""
        try:
            with contextlib.ExitStack() as teardown:
                try:
                    self._rehearse(teardown, lock)
                    status = "completed"
                except KeyboardInterrupt:
                    status, reason = "interrupted", "interrupted by the user"
                    raise
                except NotifyChaosError as exc:
                    reason = str(exc)
                    raise
                finally:
                    self.journal.write(RunEnded(status=status, reason=reason))
                    self.say("tearing down")
        finally:
            self.journal.close()

    def _rehearse(self, teardown: contextlib.ExitStack, lock: runlock.RunLock) -> None:
        control = self._toxiproxy(teardown, lock)
        spec = self.scenario.target
        # The vendors' callback URLs, rendered as the mocks start, name instance 0.
        known = {
            **instance_values(0, spec.instance_names[0], free_port()),
            "run.dir": str(self.run_dir), "run.seed": str(self.scenario.seed),
        }
        manifest = self._mocks(teardown, AddressBook(known))
        links = {name: control.create_link(name, upstream)
                 for name, upstream in self._upstreams(manifest).items()}
        # A server of the run's own takes its proxies with it as it stops (or dies).
        if self.options.toxiproxy_url:
            teardown.callback(control.remove_links)
        # A month's clock begins its lead-in from now: the target is told the epoch as it starts.
        month = self.scenario.reminders.month
        clock = None if month is None else Clock.of(month, self.scenario.duration,
                                                    time.time() + month.lead_in)
        if clock is not None and month is not None and month.stages is not None:
            tell_ledger(manifest, clock)
        # The target (and its version B) with the clock's variables, if there is a month.
        started = clocked(self.scenario)
        spec = started.target
        # Layers, not a merge: the clock's `{clock.faketime}` is made as it is rendered.
        book = AddressBook(Layers({**known, **self._addresses(manifest, links)},
                                  *([clock.values()] if clock else [])))

        # Their stop is on the teardown before the first health check (a signal may come then).
        instances = Instances(spec, self.scenario.instance_links, book, self.logs, self.run_dir,
                              teardown, on_ready=lambda ready: self._ready(
                                  ready.component, ready.pid, ready.address, ready.version))

        load = LoadGenerator(
            self.scenario, manifest.ledger_url, self.run_dir / "load", manifest.token,
            app_url=_through(links["app"], manifest.ledger_url) if "app" in links else None,
            journal_dir=self.run_dir / "journal", epoch=clock.epoch if clock else None)
        teardown.callback(self._finish_load, load)
        switches = ControlInjector({"ledger": manifest.ledger_control_url,
                                    **{f"vendors.{name}": vendor.control_url
                                       for name, vendor in manifest.vendors.items()},
                                    **{kind: channel.control_url
                                       for kind, channel in manifest.channels.items()}},
                                   manifest.ca_bundle, manifest.token)
        canary = Canary.through(links, ca_bundle=manifest.ca_bundle, secure={
            f"vendors.{name}" for name, vendor in manifest.vendors.items()
            if vendor.url.startswith("https:")})
        processes = ProcessInjector(instances.for_link)
        upgrade = UpgradeInjector(instances, started, self.journal, self.run_dir, self.say)
        injector = FamilyInjector({"network": NetworkInjector(control, canary),
                                   "vendor": switches, "email": switches, "push": switches,
                                   "data": switches,
                                   "process": processes, "upgrade": upgrade})
        timeline = TimelinePlayer(self.scenario.timeline, injector, self.journal,
                                  on_error=lambda error: self.say(FAULT_INJECTION_FAILED + error))
        teardown.callback(timeline.stop)
        # Runs before the timeline's stop: its undoing of a kill must not start an instance
        # that the teardown then stops.
        teardown.callback(processes.end)
        # Before the timeline's stop too, which waits for a cut-over under way: it ends now.
        teardown.callback(upgrade.interrupt)
        if load.web_ui_ready():
            self._ready("locust-web", load.process.pid, str(load.web_url))
        if hint := load.remote_hint():
            self.say(hint)
        # The faults' times count from the load's start: a master starts once its workers came.
        load.wait_for_workers()
        if clock is not None:
            self._await_month(clock)
        workers = self.scenario.load.workers
        pacing = describe_pacing(self.scenario)
        self.say(f"load for {self.scenario.duration:g}s, {len(self.scenario.timeline)} fault(s)"
                 + (f", from {workers} Locust workers" if workers else "")
                 + (f": {pacing}" if pacing else ""))
        self.journal.write(LoadStarted(pid=load.process.pid))
        self._load_began = time.monotonic()
        timeline.start(self._load_began)
        limit = self.scenario.duration + 60.0
        while load.wait(WATCH_EVERY) is None:
            self._check_harness()
            if time.monotonic() - self._load_began >= limit:
                raise LoadError(f"locust did not end within {limit:g}s "
                                f"(log: {load.process.log_path})")
        # A loss in the load's last moments is told as such, not as what it made fail next.
        self._check_harness()
        totals = self._finish_load(load)
        # Locust exits 1 when some requests failed, which a fault may cause; anything else, or
        # no request at all, means the load never ran and the run proves nothing.
        if totals.exit_code not in (0, 1) or totals.requests == 0:
            raise LoadError(f"locust ran no load (exit code {totals.exit_code}, "
                            f"{totals.requests} requests; log: {load.process.log_path})")
        if timeline.errors:
            raise FaultInjectionError("; ".join(timeline.errors))
        if self.scenario.drain is None:
            self.say(f"load done; watching for late reminders until every one is decided "
                     f"(at most {self.scenario.drain_seconds:g}s)")
        else:
            self.say(f"load done; watching {self.scenario.drain_seconds:g}s more for late "
                     "reminders")
        watched = settling.drain(self.scenario, self.run_dir / "journal",
                                 sleep=self._sleep_watching)
        self._check_harness()
        self.say(f"watched {watched:.1f}s after load")

    def _sleep_watching(self, seconds: float) -> None:
        """Sleep `seconds`, looking at the harness's processes every `WATCH_EVERY`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(WATCH_EVERY, left))
            self._check_harness()

    def _check_harness(self) -> None:
        """ComponentLostError if the mocks or the run's Toxiproxy server has exited: the
        reminders after that say nothing about the notifier, so the run must not be scored as
        its failure (the journal stays, for `notifychaos report`)."""
        for process in self._harness_processes:
            if process.returncode is not None:
                raise ComponentLostError(process.name, (
                    f"exited with code {process.returncode} during the run (noticed "
                    f"{time.monotonic() - self._load_began:.1f}s after the load began): what "
                    f"the notifier did after that cannot be judged (log: {process.log_path})"),
                    process.log_tail())

    def _await_month(self, clock: Clock) -> None:
        """Wait for the month's epoch, so that the load and the faults count from it; a target
        ready later starts them at once, its month that much under way."""
        early = clock.epoch - time.time()
        if early > 0:
            time.sleep(early)
        else:
            self.say(f"the target was ready {-early:.1f}s after the month began (raise "
                     "reminders.month.lead_in): the load starts that far into it")

    def _finish_load(self, load: LoadGenerator) -> LoadTotals:
        """Stop Locust (if it still runs) and journal its totals, once."""
        if self._load_totals is None:
            totals = self._load_totals = load.stop()
            self.journal.write(LoadFinished(
                exit_code=totals.exit_code, requests=totals.requests, failures=totals.failures))
        return self._load_totals

    def _ready(self, component: str, pid: int | None, address: str, version: str = "") -> None:
        self.journal.write(ComponentReady(component=component, address=address, version=version,
                                          pid=pid))
        self.say(f"{component} ready at {address}" + (f" (version {version})" if version else ""))

    def _toxiproxy(self, teardown: contextlib.ExitStack, lock: runlock.RunLock
                   ) -> ToxiproxyControl:
        prefix = lock.state.proxy_prefix
        if self.options.toxiproxy_url:
            control = ToxiproxyControl(self.options.toxiproxy_url, prefix=prefix)
            try:
                version = control.version()
            except FaultInjectionError as exc:
                raise StartupError("toxiproxy", f"no server answers at {control.url} "
                                   f"({exc})") from None
            # Written down before the first proxy is made, so that none can be left behind.
            lock.add_toxiproxy(control.url)
            self._ready("toxiproxy", None, control.url, version)
            return control
        server = ToxiproxyServer(find_server(self.options.toxiproxy_binary),
                                 self.logs / "toxiproxy.log", stop_with=teardown)
        self._harness_processes.append(server.process)
        control = ToxiproxyControl(server.url, prefix=prefix)
        self._ready("toxiproxy", server.process.pid, server.url, server.version)
        return control

    def _mocks(self, teardown: contextlib.ExitStack, book: AddressBook) -> Manifest:
        config = MocksConfig(
            seed=self.scenario.seed, window=self.scenario.reminders.window,
            lead=self.scenario.reminders.lead, population=self.scenario.population,
            changes=self.scenario.changes, journal_dir=str(self.run_dir / "journal"),
            handsets=self.scenario.handsets, channels=list(self.scenario.channels),
            app=self.scenario.app is not None, run_dir=str(self.run_dir),
            staging=staging(self.scenario), vendors={name: vendor.model_copy(update={
                key: book.render(url) for key in ("report_url", "inbound_url")
                if (url := getattr(vendor, key))})
                for name, vendor in self.scenario.vendors.items()})
        # The config holds the run's token (fresh per run) and the manifest its credentials
        # too: both owner-only. The token goes to the harness's own clients, never the target.
        config_path = self.run_dir / "mocks-config.json"
        write_private(config_path, config.model_dump_json(indent=2))
        manifest_path = self.run_dir / "mocks-manifest.json"
        process = ManagedProcess("mocks", [sys.executable, "-m", "mocks", str(config_path),
                                           str(manifest_path)],
                                 log_path=self.logs / "mocks.log", env=os.environ)
        teardown.callback(process.stop)
        self._harness_processes.append(process)
        found = poll_until(lambda: manifest_path if manifest_path.exists() else None,
                           timeout=15.0, watch=process)
        if found is None:
            raise StartupError("mocks", "no manifest within 15s", process.log_tail())
        manifest = Manifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
        self._ready("mocks", process.pid, manifest.ledger_url)
        return manifest

    def _upstreams(self, manifest: Manifest) -> dict[str, str]:
        upstreams = {"ledger": urlsplit(manifest.ledger_url).netloc}
        for name, vendor in manifest.vendors.items():
            upstreams[f"vendors.{name}"] = urlsplit(vendor.url).netloc
        for kind, channel in manifest.channels.items():
            upstreams[kind] = urlsplit(channel.url).netloc
        if self.scenario.app is not None:  # the borrower app is the ledger's view
            upstreams["app"] = upstreams["ledger"]
        return upstreams

    def _addresses(self, manifest: Manifest, links: dict[str, Link]) -> dict[str, str]:
        values = {"ledger.url": _through(links["ledger"], manifest.ledger_url),
                  "alerts.url": manifest.alerts_url, "mocks.ca_bundle": manifest.ca_bundle}
        for name, vendor in manifest.vendors.items():
            link = links[f"vendors.{name}"]
            values |= {f"vendors.{name}.url": _through(link, vendor.url),
                       f"vendors.{name}.host": link.listen_host,
                       f"vendors.{name}.port": str(link.listen_port)}
            values |= {f"vendors.{name}.credentials.{key}": value
                       for key, value in vendor.credentials.items()}
        for kind, channel in manifest.channels.items():
            link = links[kind]
            values |= {f"{kind}.url": _through(link, channel.url),
                       f"{kind}.host": link.listen_host, f"{kind}.port": str(link.listen_port)}
            values |= {f"{kind}.credentials.{key}": value
                       for key, value in channel.credentials.items()}
            values |= {f"{kind}.{name}": value for name, value in channel.values.items()}
        return values


def _through(link: Link, url: str) -> str:
    """`url` with its host and port replaced by the link's listen address (scheme kept)."""
    return urlsplit(url)._replace(netloc=f"{link.listen_host}:{link.listen_port}").geturl()
