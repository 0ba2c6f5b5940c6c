"""The upgrade step on real processes: version A stopped, the migration run, version B started
in that order, the cut-over gap journaled, and a failed migration or a version B that never gets
ready rolled back to version A."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.errors import FaultInjectionError
from harness.instances import Instances
from harness.journal import JournalWriter, UpgradeFinished, read_journal
from harness.processes import poll_until
from harness.scenario import Scenario, Step, parse_scenario
from harness.target import AddressBook
from harness.upgrade import UpgradeInjector

# A notifier of either version: answers its VERSION on every GET. Each refuses to start on the
# other's state (version 2 until the migration has left its marker, version 1 after).
SERVER = """\
import http.server, os, pathlib, sys
version, migrated = os.environ["VERSION"], pathlib.Path(sys.argv[2], "migrated").exists()
if version == "2" and not migrated:
    sys.exit("outbox is schema 1; version 2 needs schema 2")
if version == "1" and migrated:
    sys.exit("outbox is schema 2; version 1 needs schema 1")
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(os.environ["VERSION"].encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

# The migration: proves version A is down (its port refuses), then leaves the marker.
MIGRATE = """\
import pathlib, socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
    sys.exit("version A still answers")
except ConnectionRefusedError:
    pass
pathlib.Path(sys.argv[2], "migrated").write_text("A was down")
print("migrated 3 reminders")
"""

SCENARIO = f"""\
name: upgrade-unit
duration: 60s
target:
  command: [python, -c, {json.dumps(SERVER)}, "{{target.port}}", "{{run.dir}}"]
  env: {{VERSION: "1"}}
  health: "http://127.0.0.1:{{target.port}}/"
  ready_timeout: 20s
  stop_grace: 5s
upgrade:
  target:
    command: [python, -c, {json.dumps(SERVER)}, "{{target.port}}", "{{run.dir}}"]
    env: {{VERSION: "2"}}
    health: "http://127.0.0.1:{{target.port}}/"
    ready_timeout: 20s
  migrate:
    command: [python, -c, {json.dumps(MIGRATE)}, "{{target.port}}", "{{run.dir}}"]
    timeout: 20s
vendors: {{sms: {{kind: twilio}}}}
reminders: {{rate: 1/s, window: 10s, correlate: {{body: 'ref:(?P<ref>\\w{{8}})'}}}}
timeline: [{{at: 10s, fault: upgrade, link: target}}]
"""

STEP = Step.model_validate({"at": 10, "fault": "upgrade", "link": "target"})


def version(book: AddressBook) -> str | None:
    """What the instance at `book`'s port answers, or None when nothing listens."""
    try:
        return httpx.get(f"http://127.0.0.1:{book.values['target.port']}/", timeout=2).text
    except httpx.HTTPError:
        return None


def scenario(*overrides: str) -> Scenario:
    return parse_scenario(SCENARIO, overrides=overrides)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    return tmp_path


class Rig:
    """An injector on real instances of version A, its journal and what it said."""

    def __init__(self, run: Scenario, run_dir: Path) -> None:
        self.teardown = contextlib.ExitStack()
        self.instances = Instances(run.target, run.instance_links, AddressBook(
            {"run.dir": str(run_dir)}), run_dir / "logs", run_dir, self.teardown)
        self.journal = JournalWriter(run_dir / "journal", "harness")
        self.said: list[str] = []
        self.injector = UpgradeInjector(self.instances, run, self.journal, run_dir,
                                        self.said.append)
        self.run_dir = run_dir

    def finished(self) -> UpgradeFinished:
        self.journal.close()
        [event] = read_journal(self.run_dir / "journal").of(UpgradeFinished)
        return event

    def versions(self) -> list[str | None]:
        return [version(book) for book in self.instances.books]


@pytest.fixture
def rigs() -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        rig.teardown.close()


def rig(rigs: list[Rig], run_dir: Path, *overrides: str) -> Rig:
    """A rig on the scenario with `overrides`, stopped when the test ends."""
    made = Rig(scenario(*overrides), run_dir)
    rigs.append(made)
    return made


def sleeper(pid_file: Path) -> str:
    """A migration that writes its pid to `pid_file`, then sleeps (an override)."""
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    return f"upgrade.migrate.command=[python, -c, {json.dumps(code)}]"


def test_a_cut_over_stops_a_then_migrates_then_starts_b_and_journals_its_gap(
        rigs: list[Rig], run_dir: Path) -> None:
    upgrade = rig(rigs, run_dir, "target.replicas=2", "upgrade.target.replicas=2")
    assert upgrade.versions() == ["1", "1"]
    pids = [upgrade.instances.backend(i).current().pid for i in range(2)]
    measured = upgrade.injector.apply(3, STEP)
    assert upgrade.versions() == ["2", "2"]
    # The migration found A's port refusing (A stopped first); B started only once the
    # migration had left its marker (it refuses to start without it).
    assert (run_dir / "migrated").read_text() == "A was down"
    assert "migrated 3 reminders" in (run_dir / "logs" / "migration.log").read_text()
    finished = upgrade.finished()
    assert (finished.step, finished.outcome, finished.migration_exit) == (3, "upgraded", 0)
    assert finished.reason == "version B is ready"
    assert finished.log == "logs/migration.log"
    assert finished.stop_ended is not None and finished.ready_at is not None
    assert finished.migration_seconds is not None and finished.cut_over_gap is not None
    assert finished.stop_began <= finished.stop_ended <= finished.ready_at
    assert finished.cut_over_gap == pytest.approx(finished.ready_at - finished.stop_began,
                                                  abs=0.001)
    assert finished.cut_over_gap >= finished.migration_seconds
    assert (measured.step, measured.probes, measured.affected) == (3, 2, 2)
    assert re.fullmatch(
        rf"SIGTERM to pid {pids[0]} \(target\[0\]\), pid {pids[1]} \(target\[1\]\); "
        r"migration exit 0 in \d+\.\ds; version B ready in \d+\.\ds \(cut-over gap \d+\.\ds\)",
        measured.detail), measured.detail
    assert upgrade.said == []


def test_a_failed_migration_rolls_back_to_version_a(rigs: list[Rig], run_dir: Path) -> None:
    upgrade = rig(rigs, run_dir, "upgrade.migrate.command=[python, -c, 'print(\"no table\"); "
                  "exit(3)']")
    measured = upgrade.injector.apply(0, STEP)
    assert upgrade.versions() == ["1"]  # version A runs again
    assert "schema 1" not in (run_dir / "logs" / "target.log").read_text()  # B never started
    finished = upgrade.finished()
    assert (finished.outcome, finished.migration_exit, finished.ready_at) == (
        "migration_failed", 3, None)
    assert finished.cut_over_gap is None
    reason = "the migration exited with code 3 (see logs/migration.log)"
    assert finished.reason == reason + "; rolled back to version A"
    assert "no table" in (run_dir / "logs" / "migration.log").read_text()
    assert re.fullmatch(r"SIGTERM to pid \d+; migration exit 3 in \d+\.\ds; migration failed: "
                        + re.escape(finished.reason), measured.detail), measured.detail
    assert upgrade.said == [f"upgrade failed: {reason}; rolling back to version A"]


def test_a_migration_past_its_timeout_is_stopped_and_rolled_back(
        rigs: list[Rig], run_dir: Path) -> None:
    pid_file = run_dir / "migration.pid"
    upgrade = rig(rigs, run_dir, sleeper(pid_file), "upgrade.migrate.timeout=2s")
    upgrade.injector.apply(0, STEP)
    assert upgrade.versions() == ["1"]
    finished = upgrade.finished()
    assert (finished.outcome, finished.migration_exit) == ("migration_failed", None)
    assert finished.migration_seconds is not None and finished.migration_seconds >= 2.0
    assert finished.reason.startswith("the migration did not finish within 2s and was stopped")
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_a_version_b_that_never_gets_ready_is_rolled_back(
        rigs: list[Rig], run_dir: Path) -> None:
    # No migration: version B finds the old state and exits at once.
    upgrade = rig(rigs, run_dir, "upgrade.migrate=null")
    measured = upgrade.injector.apply(0, STEP)
    assert upgrade.versions() == ["1"]
    assert "outbox is schema 1" in (run_dir / "logs" / "target.log").read_text()
    finished = upgrade.finished()
    assert (finished.outcome, finished.migration_exit, finished.migration_seconds) == (
        "not_ready", None, None)
    assert finished.log == ""
    assert finished.reason.startswith("version B did not become ready: target: exited with "
                                      "code 1 before it was ready")
    assert finished.reason.endswith("; rolled back to version A")
    assert "(its log ends: " in finished.reason and "\n" not in finished.reason
    assert "migration" not in measured.detail


def test_a_version_a_that_cannot_come_back_fails_the_step(
        rigs: list[Rig], run_dir: Path) -> None:
    # The migration leaves its marker, then fails: version A refuses the migrated state.
    half = "import pathlib, sys; pathlib.Path(sys.argv[1], 'migrated').touch(); exit(4)"
    upgrade = rig(rigs, run_dir,
                  f"upgrade.migrate.command=[python, -c, {json.dumps(half)}, '{{run.dir}}']")
    with pytest.raises(FaultInjectionError, match="version A did not come back"):
        upgrade.injector.apply(0, STEP)
    finished = upgrade.finished()
    assert finished.outcome == "migration_failed"
    assert "; rolling back failed: version A did not come back: target: exited" in finished.reason
    assert upgrade.versions() == [None]


def test_an_interrupted_migration_is_stopped_journaled_and_not_rolled_back(
        rigs: list[Rig], run_dir: Path) -> None:
    pid_file = run_dir / "migration.pid"
    upgrade = rig(rigs, run_dir, sleeper(pid_file))
    errors: list[BaseException] = []

    def cut_over() -> None:
        try:
            upgrade.injector.apply(0, STEP)
        except BaseException as exc:  # told to the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=cut_over)
    thread.start()
    assert poll_until(lambda: (pid_file.exists() and pid_file.read_text()) or None, timeout=20)
    upgrade.injector.interrupt()  # the run is stopping (Ctrl-C on the main thread)
    thread.join(timeout=20)
    assert not thread.is_alive() and errors == []
    finished = upgrade.finished()
    assert (finished.outcome, finished.migration_exit) == ("interrupted", None)
    assert finished.reason == "the run stopped during the migration (it was stopped)"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    assert upgrade.versions() == [None]  # nothing started again for the teardown to stop
    with pytest.raises(FaultInjectionError, match="the run is stopping"):
        upgrade.injector.apply(1, STEP)
