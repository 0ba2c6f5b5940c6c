"""The live display: the incremental journal reader, the running estimate, and both outputs."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from harness.errors import FaultInjectionError
from harness.journal import (
    Event,
    JournalWriter,
    LoadFinished,
    LoadStarted,
    ReminderChanged,
    RunStarted,
)
from harness.live import LiveDisplay, RunProgress, plain_line
from harness.run import FAULT_INJECTION_FAILED
from harness.scenario import Step
from harness.tail import JournalTail
from harness.timeline import TimelinePlayer
from tests.harness.journals import (
    OTHER_PHONE,
    SCENARIO,
    T0,
    owed,
    phone_changed,
    scenario,
    sent,
    step,
)

TOTAL = SCENARIO.duration + SCENARIO.drain_seconds


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def write(directory: Path, source: str, *events: Event | list[Event]) -> None:
    """Append events to `<directory>/<source>.jsonl`, as that source's writer would."""
    writer = JournalWriter(directory, source)
    for item in events:
        for event in item if isinstance(item, list) else [item]:
            writer.write(event)
    writer.close()


def test_the_tail_reads_only_whole_new_lines_and_files_that_appear_later(tmp_path: Path) -> None:
    write(tmp_path, "harness", RunStarted(t=T0, scenario=SCENARIO))
    tail = JournalTail(tmp_path)
    assert [e.kind for e in tail.read()] == ["run.started"]
    assert tail.read() == []  # nothing new: nothing read twice

    line = LoadStarted(t=T0, pid=7).model_dump_json() + "\n"
    with (tmp_path / "mocks.jsonl").open("a", encoding="utf-8") as mocks:
        mocks.write(line[:20])  # a writer in the middle of its line
        mocks.flush()
        assert tail.read() == []
        mocks.write(line[20:])
    read = tail.read()
    assert [(e.kind, e.t) for e in read] == [("load.started", T0)]
    write(tmp_path, "harness", LoadFinished(t=T0 + 5, exit_code=0, requests=3, failures=1))
    assert [e.kind for e in tail.read()] == ["load.finished"]


def test_the_estimate_grows_with_the_journal(tmp_path: Path) -> None:
    tail, progress = JournalTail(tmp_path), RunProgress()
    write(tmp_path, "harness", RunStarted(t=T0, scenario=SCENARIO), LoadStarted(t=T0, pid=1),
          step(0, "proxy.down", "vendors.sms", 2, 8), step(1, "vendor.outage", "vendors.sms", 3,
                                                             None))
    write(tmp_path, "mocks",
          owed("AAAA0001", at=5, scheduled=1),                   # arrives on time
          owed("AAAA0002", at=5, scheduled=1, borrower="B2"),    # never arrives
          owed("AAAA0003", at=6, scheduled=1, borrower="B3"),    # to a number no longer theirs
          owed("AAAA0004", at=6, scheduled=1, borrower="B4"),    # repaid: owed nothing
          owed("AAAA0005", at=40, scheduled=2, borrower="B5"),   # not due yet
          phone_changed(3, OTHER_PHONE, borrower="B3"),
          ReminderChanged(t=T0 + 3, reminder_id="rem-AAAA0004", change="repaid", amount="0.00"),
          sent("AAAA0001", at=5.5, client_ref="AAAA0001", arrive=0.5),
          sent("AAAA0003", at=6))
    progress.add(tail.read())

    early = progress.snapshot(T0 + 10)
    assert (early.elapsed, early.total) == (10, TOTAL)
    assert [(a.step, a.fault, a.link) for a in early.active] == [(1, "vendor.outage",
                                                                  "vendors.sms")]
    # Deadlines at 15 s and 16 s have not passed: B2 and B3 (a send to a number no longer
    # theirs settles nothing) are in flight.
    assert (early.due, early.on_time, early.in_flight) == (1, 1, 2)
    assert (early.requests, early.failures, early.ended) == (5, None, None)

    write(tmp_path, "mocks", owed("AAAA0006", at=12, scheduled=11, borrower="B6"),
          sent("AAAA0006", at=13, body="ref:AAAA0006 amount:100.00 due:2026-12-05"))
    write(tmp_path, "harness", LoadFinished(t=T0 + 60, exit_code=1, requests=6, failures=2))
    progress.add(tail.read())
    later = progress.snapshot(T0 + 30)
    assert (later.due, later.on_time, later.in_flight) == (4, 2, 0)
    assert later.continuity == 0.5
    assert (later.requests, later.failures) == (6, 2)
    assert plain_line(later) == (
        f"[ 30s/{TOTAL:.0f}s] due 4 on time 2 (50.0%) in flight 0 requests 6 failures 2 "
        "faults: step 1 vendor.outage vendors.sms")


def reminders_sent_and_missed(count: int) -> list[Event]:
    """A run's start and `count` reminders: every fourth borrower's phone changed before the
    send (which goes to the new one), every third reminder never sent, the rest sent late or
    on time, arriving after 0 to 12 s."""
    events: list[Event] = [RunStarted(t=T0, scenario=SCENARIO), LoadStarted(t=T0, pid=1)]
    for n in range(1, count + 1):
        ref, borrower = f"AAAA{n:04d}", f"B{n}"
        events.append(owed(ref, at=n, scheduled=n - 1, borrower=borrower))
        if n % 4 == 0:
            events.append(phone_changed(n + 0.5, OTHER_PHONE, borrower=borrower))
        if n % 3:
            events.append(sent(ref, at=n + n % 7, arrive=n % 5 * 3.0,
                               to=OTHER_PHONE if n % 4 == 0 else owed(ref, at=n).phone))
    return events


def test_an_estimate_refreshed_all_along_agrees_with_one_made_at_the_end() -> None:
    # A reminder counted once for good (on time, or due with its window closed) is not looked
    # at again; the figures must stay those of a progress that sees everything at once.
    events = reminders_sent_and_missed(40)
    refreshed = RunProgress()
    for second in range(0, 80):
        refreshed.add([e for e in events if second <= e.t - T0 < second + 1])
        now = T0 + second + 1
        at_once = RunProgress()
        at_once.add([e for e in events if e.t < now])
        assert refreshed.snapshot(now) == at_once.snapshot(now), second


def test_a_reminder_that_arrived_by_push_or_e_mail_within_its_window_is_on_time(
        tmp_path: Path) -> None:
    run = scenario("channels={push: {window: 30s}, email: {window: 40s}}")
    tail, progress = JournalTail(tmp_path), RunProgress()
    write(tmp_path, "harness", RunStarted(t=T0, scenario=run), LoadStarted(t=T0, pid=1))
    pushed = owed("AAAA0001", at=5, scheduled=1).model_copy(update={"device_token": "tok:1"})
    mailed = owed("AAAA0002", at=5, scheduled=1, borrower="B2").model_copy(
        update={"email": "wang@example.com"})
    elsewhere = owed("AAAA0003", at=5, scheduled=1, borrower="B3").model_copy(
        update={"device_token": "tok:3"})
    write(tmp_path, "mocks", pushed, mailed, elsewhere,
          sent("AAAA0001", at=25, to="tok:1").model_copy(update={"channel": "push"}),
          sent("AAAA0002", at=40, to="WANG@example.com").model_copy(update={"channel": "email"}),
          sent("AAAA0003", at=20, to="tok:other").model_copy(update={"channel": "push"}))
    progress.add(tail.read())
    # Past the SMS window (15 s), within push's (35 s) and e-mail's (45 s); the third went to
    # another phone's token and is still in flight until the longest window closes.
    snapshot = progress.snapshot(T0 + 42)
    assert (snapshot.due, snapshot.on_time, snapshot.in_flight) == (2, 2, 1)
    assert progress.snapshot(T0 + 46).due == 3


def test_off_a_terminal_it_prints_a_plain_line_every_interval_and_no_escape_codes(
        tmp_path: Path) -> None:
    journal = tmp_path / "run" / "journal"
    write(journal, "harness", RunStarted(t=T0, scenario=SCENARIO),
          LoadStarted(t=T0, pid=1), step(0, "proxy.down", "vendors.sms", 1, None))
    now = [T0 + 12.0]
    log = tmp_path / "out.log"
    with log.open("w", encoding="utf-8") as file:
        console = Console(file=file, highlight=False)
        assert not console.is_terminal

        def printed() -> str:
            file.flush()
            return log.read_text(encoding="utf-8")

        with LiveDisplay(console, poll=0.01, clock=lambda: now[0]) as live:
            live.say(f"run folder: {journal.parent}")
            wait_for(lambda: "[ 12s/" in printed(), "the first line")
            now[0] = T0 + 15.0  # within the same 10 s: no second line
            live.say(FAULT_INJECTION_FAILED + "step 1 (proxy.down on vendors.sms): refused")
            now[0] = T0 + 21.0
            wait_for(lambda: "[ 21s/" in printed(), "the second line")
    text = log.read_text(encoding="utf-8")
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == f"· run folder: {journal.parent}"
    assert [line for line in lines if line.startswith("[")] == [
        f"[ 12s/{TOTAL:.0f}s] due 0 on time 0 in flight 0 requests 0 "
        "faults: step 0 proxy.down vendors.sms",
        f"[ 21s/{TOTAL:.0f}s] due 0 on time 0 in flight 0 requests 0 "
        "faults: step 0 proxy.down vendors.sms"]
    assert "! fault injection failed: step 1 (proxy.down on vendors.sms): refused" in lines


def test_on_a_terminal_it_shows_a_panel_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    journal = tmp_path / "run" / "journal"
    write(journal, "harness", RunStarted(t=T0, scenario=SCENARIO),
          LoadStarted(t=T0, pid=1), step(0, "proxy.down", "vendors.sms", 1, None))
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with pytest.raises(KeyboardInterrupt), \
            LiveDisplay(console, poll=0.01, clock=lambda: T0 + 7) as live:
        live.say(f"run folder: {journal.parent}")
        live.say(FAULT_INJECTION_FAILED + "undo step 0: refused")
        raise KeyboardInterrupt
    assert not [t for t in threading.enumerate() if t.name == "live-display"]
    shown = screen.getvalue()
    assert "\x1b[" in shown  # a terminal gets the live region's control codes
    for figure in ("notifychaos · hand-made", f"7s / {TOTAL:.0f}s", "step 0 proxy.down on "
                   "vendors.sms", "due so far 0", "continuity", "requests 0",
                   "failures known when the load ends", "fault injection failed: undo step 0"):
        assert figure in shown, figure


class Refusing:
    """An injector that cannot apply anything."""

    def apply(self, index: int, step: Step) -> None:
        raise FaultInjectionError("refused")

    def revert(self, index: int, step: Step) -> None:
        raise AssertionError("never applied, never undone")


def test_the_timeline_tells_a_fault_injection_error_when_it_happens(tmp_path: Path) -> None:
    told: list[str] = []
    steps = [Step.model_validate({"at": "0s", "for": "5s", "fault": "proxy.down",
                                  "link": "vendors.sms"})]
    journal = JournalWriter(tmp_path, "harness")
    player = TimelinePlayer(steps, Refusing(), journal, on_error=told.append)
    player.start(time.monotonic())
    try:
        wait_for(lambda: bool(told), "the error to be told")
    finally:
        player.stop()
        journal.close()
    assert told == player.errors == ["step 0 (proxy.down on vendors.sms): refused"]


def test_an_estimate_from_the_lines_agrees_with_one_from_the_whole_events(
        tmp_path: Path) -> None:
    # The display reads a reminder's and a send's lines into lean models of the fields it
    # needs; a line spelt otherwise (spaces) is read whole, one it cannot read is passed over.
    events = reminders_sent_and_missed(20)
    write(tmp_path, "mocks", events)
    with (tmp_path / "hand.jsonl").open("wb") as file:
        spaced = owed("AAAA0099", at=3, scheduled=1, borrower="B99")
        file.write(json.dumps(spaced.model_dump(mode="json")).encode() + b"\n")
        file.write(b'{"t":1.0,"source":"x","seq":1,"kind":"send.recorded","to":1}\n')
    from_lines, from_events = RunProgress(), RunProgress()
    from_lines.add_lines(JournalTail(tmp_path).lines())
    from_events.add(JournalTail(tmp_path).read())
    for second in range(0, 40):
        now = T0 + second
        assert from_lines.snapshot(now) == from_events.snapshot(now), second
    assert from_lines.snapshot(T0 + 40).requests == 21
