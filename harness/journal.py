"""The run journal: typed events, appended to one JSON-lines file per writing process.

Every process that writes (the harness, the mocks) owns one file, so no lock is shared. Each event
carries its source, a per-source sequence number and a wall-clock time; reading merges the files
in time order. A file cut short by a crash loses at most its last, half-written line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import to_json

from harness.errors import JournalError
from harness.scenario import Scenario
from mocks.manifest import Channel


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    t: float = 0.0
    source: str = ""
    seq: int = 0


JOURNAL_SCHEMA = 3
"""The journal format this code writes and reads up to: 1 before `run.started` said its
`schema_version` (no instances, upgrade or rehearsal data faults), 2 with them, 3 since sends
name their channel and the borrower app's opens are journaled (`app.opened`)."""



class RunStarted(_Event):
    """The run began; it carries the scenario so that the journal alone can be scored, the
    versions of what ran it (`notifychaos`, `locust`, `python`; Toxiproxy's server says its own
    in its `component.ready`) and the journal's format (`schema_version`; a journal written
    before it was recorded is schema 1)."""

    kind: Literal["run.started"] = "run.started"
    scenario: Scenario
    versions: dict[str, str] = {}
    schema_version: int = 1


KILLED: Literal["interrupted (harness killed)"] = "interrupted (harness killed)"
"""The status of a run whose harness died (SIGKILL, an OOM kill), as whoever sealed it says."""


class RunEnded(_Event):
    """The run stopped: completed, interrupted (Ctrl-C), failed (with the reason), or
    interrupted because its harness was killed (written by whoever sealed the run)."""

    kind: Literal["run.ended"] = "run.ended"
    status: Literal["completed", "interrupted", "failed", "interrupted (harness killed)"]
    reason: str = ""


class ComponentReady(_Event):
    """A component of the topology is up: its name, process id, address and version."""

    kind: Literal["component.ready"] = "component.ready"
    component: str
    pid: int | None = None
    address: str = ""
    version: str = ""


class ReminderScheduled(_Event):
    """The ledger scheduled a reminder: the truth as of `t` (the borrower's contact too), when the
    bank wants it sent (`remind_at`) and by when it must have arrived (`send_by`)."""

    kind: Literal["reminder.scheduled"] = "reminder.scheduled"
    reminder_id: str
    ref: str
    loan_id: str
    borrower_id: str
    name: str
    phone: str
    email: str = ""
    device_token: str = ""
    """The push token of the borrower's app ("" when they have none)."""
    national_id: str = ""
    account: str = ""
    """The repayment account (bank card) number."""
    opted_out: bool = False
    amount: str
    due_date: str
    remind_at: float
    send_by: float


class ReminderChanged(_Event):
    """The truth of a scheduled reminder changed: its installment was repaid in full (the
    reminder is cancelled) or in part (the amount still due is lower)."""

    kind: Literal["reminder.changed"] = "reminder.changed"
    reminder_id: str
    change: Literal["repaid", "partially_repaid"]
    amount: str
    """The amount still due after the repayment ("0.00" when repaid in full)."""


class BorrowerChanged(_Event):
    """A borrower's record changed in the core banking system: a new phone number, or an opt-out
    or opt-in made at the bank (STOP replies are `BorrowerOptedOut`)."""

    kind: Literal["borrower.changed"] = "borrower.changed"
    borrower_id: str
    phone: str
    opted_out: bool


class SendRecorded(_Event):
    """A vendor mock accepted a message; `handset` says where it went, `inbox_at` when it arrived.

    `channel` says how: an SMS vendor (`to` a phone number), the push service (`to` a device
    token; `body` the notification's title and text on two lines) or the mail server (`to` an
    address; `body` the subject, a blank line, the text). `vendor` names the mock.

    `handset` is `delivered` (the inbox), `spam` (the spam folder), `absent` (the phone was
    off: never arrived) or `dropped` (the vendor accepted it and never delivered it).

    `request` is the raw request, its secrets masked. A call with several recipients is
    journaled once: its first send carries the request, the others name that send's message id
    in `request_of` (one Alibaba call may list thousands of numbers).
    """

    kind: Literal["send.recorded"] = "send.recorded"
    channel: Channel = "sms"
    vendor: str
    message_id: str
    to: str
    body: str
    client_ref: str | None = None
    handset: Literal["delivered", "spam", "absent", "dropped"] = "delivered"
    inbox_at: float | None
    request: dict[str, Any] = {}
    request_of: str | None = None


class VendorCall(_Event):
    """One call to a vendor's API, as the vendor saw it: how it ended and how long it took.

    `accepted`: at least one message accepted; `read`: answered a call that sends nothing (a
    lookup of past sends); `rejected`: refused for the request's own fault (bad number, bad
    credentials); `refused`: the vendor was down or throttling; `lost`: the answer never left
    (the response-lost fault).
    """

    kind: Literal["vendor.call"] = "vendor.call"
    vendor: str
    status: int | None
    outcome: Literal["accepted", "read", "rejected", "refused", "lost"]
    latency: float


class BorrowerOptedOut(_Event):
    """A borrower opted out where the notifier hears of it (a STOP reply to an SMS vendor, or
    the app's setting: `vendor` "app"): from now on the ledger's truth says send them
    nothing, on any channel."""

    kind: Literal["borrower.opted_out"] = "borrower.opted_out"
    phone: str
    vendor: str


class MockFaultsChanged(_Event):
    """A mock (a vendor, or `ledger`) put new faults in force (only those not at default)."""

    kind: Literal["mock.faults"] = "mock.faults"
    mock: str
    faults: dict[str, Any]


class FaultApplied(_Event):
    """A timeline step took effect (its real time is `t`)."""

    kind: Literal["fault.applied"] = "fault.applied"
    step: int
    fault: str
    link: str
    params: dict[str, float | int | str] = {}


class FaultReverted(_Event):
    """A timeline step was undone, at its end or because the run stopped."""

    kind: Literal["fault.reverted"] = "fault.reverted"
    step: int
    fault: str
    link: str
    error: str | None = None


class FaultTouched(_Event):
    """A mock's fault switch acted on something: a vendor call it refused, delayed or lost, a
    send it dropped, a delivery report it held back, a ledger record it distorted.

    `switch` is the mock's fault field (`outage`, `drift`, ...); `subject` names what was
    touched (a reminder id for ledger records, a message id for sends, empty for a whole call).
    """

    kind: Literal["fault.touched"] = "fault.touched"
    mock: str
    switch: str
    subject: str = ""
    detail: dict[str, Any] = {}


class FaultMeasured(_Event):
    """What the harness measured of a step it carried out itself: canary requests through a
    Toxiproxy link (how many of `probes` showed the fault), or the process it signalled."""

    kind: Literal["fault.measured"] = "fault.measured"
    step: int
    probes: int
    affected: int
    detail: str


class AlertReceived(_Event):
    """The notifier posted an alert to the alert sink."""

    kind: Literal["alert.received"] = "alert.received"
    body: dict[str, Any] | list[Any] | str


class LoadStarted(_Event):
    """Load began; the timeline's step times count from here."""

    kind: Literal["load.started"] = "load.started"
    pid: int


class LoadFinished(_Event):
    """Locust ended: its exit code and request totals."""

    kind: Literal["load.finished"] = "load.finished"
    exit_code: int | None
    requests: int
    failures: int


class AppOpened(_Event):
    """A borrower opened the bank's app (Locust, through the `app` link): how the app's view of
    their next installment answered (`status` None: no answer), and what it showed."""

    kind: Literal["app.opened"] = "app.opened"
    borrower_id: str
    status: int | None
    latency: float
    reminder_id: str | None = None
    amount: str | None = None
    due_date: str | None = None


UpgradeOutcome = Literal["upgraded", "migration_failed", "not_ready", "interrupted"]
"""How an upgrade step ended: version B ready; the migration failed (non-zero exit, timed out,
or could not start) or version B never became ready, both rolled back to version A; or the run
stopped in the middle."""


class UpgradeFinished(_Event):
    """An upgrade step is over: when version A's stop began and ended, how the migration ended
    (`migration_exit` None: timed out, or no migration given), when version B was ready (None:
    never) and the cut-over gap (stop began to B healthy); `log` is relative to the run folder."""

    kind: Literal["upgrade.finished"] = "upgrade.finished"
    step: int
    stop_began: float
    stop_ended: float | None
    migration_exit: int | None
    migration_seconds: float | None
    ready_at: float | None
    cut_over_gap: float | None
    outcome: UpgradeOutcome
    reason: str
    log: str = ""


Event = Annotated[
    RunStarted | RunEnded | ComponentReady | ReminderScheduled | ReminderChanged
    | BorrowerChanged | SendRecorded | VendorCall | BorrowerOptedOut | MockFaultsChanged
    | FaultTouched | FaultApplied | FaultReverted | FaultMeasured | AlertReceived
    | LoadStarted | LoadFinished | UpgradeFinished | AppOpened,
    Field(discriminator="kind"),
]
EVENT: TypeAdapter[Event] = TypeAdapter(Event)
"""Reads one journal line as whichever event it is."""
E = TypeVar("E", bound=_Event)


class JournalWriter:
    """Appends events of one source to `<dir>/<source>.jsonl`; safe to share between threads.

    Each event is one whole line, and each write() call to the file is of whole lines (a write
    that fails half-way is cut back), so a crash, or a reader racing the writer, can only ever
    see a torn last line.

    By default each event is in the file (handed to the OS: it survives the process, not a
    power cut) when `write` returns. With `group_commit`, events written from within a running
    event loop wait in memory and are written together, in one write() call, on the loop's next
    turn: an answer that acknowledges an event must first await `committed()`, which returns
    once that event is in the file, or call `commit()`, which writes the batch at once (before
    a connection is cut, say). Events written outside a running loop (another thread) are
    written at once, as by default. A crash of the process can then lose the events of its
    current loop turn, and no acknowledged one.
    """

    def __init__(self, directory: Path, source: str, *, group_commit: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{source}.jsonl"
        self.source = source
        self._lock = threading.Lock()
        self._seq = self._last_seq()
        self._file = self.path.open("ab", buffering=0)  # unbuffered: our batches, one write each
        self._group = group_commit
        self._pending: list[bytes] = []
        self._batch: asyncio.Event | None = None  # set once _pending is in the file
        self._failed: OSError | None = None

    def _last_seq(self) -> int:
        # A restarted writer continues its own sequence instead of repeating numbers.
        if not self.path.exists():
            return 0
        with self.path.open("rb") as lines:
            return sum(1 for _ in lines)

    def write(self, event: E) -> E:
        """Stamp `event` with source, sequence and (unless set) time, append it, and return it
        (with `group_commit`, in the file on the loop's next turn: see `committed`)."""
        stamped = event

        def line(seq: int) -> bytes:
            nonlocal stamped
            stamped = event.model_copy(
                update={"source": self.source, "seq": seq, "t": event.t or time.time()})
            return stamped.model_dump_json(by_alias=True).encode()

        self._append(line)
        return stamped

    def append(self, event: _Event) -> None:
        """`write` for a caller that needs no stamped copy back: the very same line, with the
        stamps put into the unstamped event's JSON instead of into a copy of the event (a
        copy costs as much as the JSON; the mocks write two events per send)."""
        if event.source or event.seq:  # stamped already: `write` restamps it
            self.write(event)
            return
        unstamped = event.model_dump_json(by_alias=True)
        # The stamps are the first fields of every event; pydantic writes them in that order.
        start = f'{{"t":{to_json(event.t).decode()},"source":"","seq":0,'
        if not unstamped.startswith(start):
            self.write(event)
            return
        source, rest = to_json(self.source).decode(), unstamped[len(start):]

        def line(seq: int) -> bytes:
            t = to_json(event.t or time.time()).decode()
            return f'{{"t":{t},"source":{source},"seq":{seq},{rest}'.encode()

        self._append(line)

    def _append(self, line: Callable[[int], bytes]) -> None:
        """Append the line that `line` makes of the next sequence number."""
        loop = _running_loop() if self._group else None
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._file.closed:
                raise ValueError(f"{self.path}: the journal writer is closed")
            self._seq += 1
            self._pending.append(line(self._seq) + b"\n")
            if loop is None:
                self._write_pending()
            elif self._batch is None:
                self._batch = asyncio.Event()
                loop.call_soon(self.commit)

    async def committed(self) -> None:
        """Return once every event written so far is in the file; raise the OSError that kept
        one out of it, if one did (then every later write fails too: the journal has a gap)."""
        batch = self._batch
        if batch is not None:
            await batch.wait()
        if self._failed is not None:
            raise self._failed

    def commit(self) -> None:
        """Write the batch waiting in memory now, and wake its waiters (the loop's next turn
        does it anyway; a client about to see its connection cut must not wait for that)."""
        with self._lock:
            batch, self._batch = self._batch, None
            if self._failed is None:
                with contextlib.suppress(OSError):  # kept: `committed` raises it to the waiters
                    self._write_pending()
        if batch is not None:
            batch.set()

    def _write_pending(self) -> None:
        """Write the pending lines in one call (called with the lock held)."""
        data, self._pending = b"".join(self._pending), []
        done = 0
        try:
            while done < len(data):  # a regular file takes it all at once, short of errors
                done += self._file.write(data[done:])
        except OSError as exc:  # a full disk: cut back what was written of the batch
            self._failed = exc
            os.ftruncate(self._file.fileno(), os.fstat(self._file.fileno()).st_size - done)
            raise

    def close(self) -> None:
        """Write what is waiting and close the file; later writes are an error."""
        if self._batch is not None:
            self.commit()
        with self._lock:
            self._file.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass(frozen=True)
class Journal:
    """All events of a run, merged from every source and ordered by time."""

    events: tuple[Event, ...]

    def of(self, kind: type[E]) -> list[E]:
        """The events of one type, in time order."""
        return [event for event in self.events if isinstance(event, kind)]

    def first(self, kind: type[E]) -> E | None:
        """The earliest event of one type, if any."""
        return next(iter(self.of(kind)), None)


SEAL_NAME = "seal.json"
"""A sealed journal folder's list of files and their sizes: the journal is that, whatever a
late writer (a survivor of a killed run) appends afterwards."""


def seal_journal(directory: Path) -> None:
    """Seal `directory`: each `*.jsonl` file's size up to its last whole line, read no further."""
    sizes = {}
    for path in sorted(directory.glob("*.jsonl")):
        data = path.read_bytes()
        sizes[path.name] = data.rfind(b"\n") + 1
    partial = directory / f".{SEAL_NAME}.tmp"
    partial.write_text(json.dumps(sizes, indent=2) + "\n", encoding="utf-8")
    partial.replace(directory / SEAL_NAME)


def read_seal(directory: Path) -> dict[str, int] | None:
    """The sizes a sealed journal folder's files are read up to; None when it is not sealed."""
    try:
        sizes: dict[str, int] = json.loads((directory / SEAL_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise JournalError(f"{directory / SEAL_NAME}: not a journal seal: {exc}") from None
    return sizes


def read_journal(directory: Path) -> Journal:
    """Merge every `*.jsonl` file under `directory` into one time-ordered Journal (only what a
    seal names, when the folder is sealed)."""
    sizes = read_seal(directory)
    events: list[Event] = []
    for path in sorted(directory.glob("*.jsonl")):
        refuse_newer(path)
        if sizes is None:
            events.extend(_read_file(path))
        elif path.name in sizes:
            events.extend(_read_file(path, sizes[path.name]))
    events.sort(key=lambda event: (event.t, event.source, event.seq))
    return Journal(tuple(events))


def refuse_newer(path: Path) -> None:
    """Refuse a journal of a newer format than this code reads, before its events are read
    (a newer format may have events this code would call malformed). `run.started` is the
    first line of the harness's file."""
    with path.open("rb") as file:
        first = file.readline()
    try:
        started = json.loads(first)
    except ValueError:
        return  # a torn or empty first line: the reader says what is wrong with it
    if not isinstance(started, dict) or started.get("kind") != "run.started":
        return
    version = started.get("schema_version", 1)
    if isinstance(version, int) and version > JOURNAL_SCHEMA:
        raise JournalError(f"{path}: written by a newer notifychaos: schema {version}, this one "
                           f"reads up to {JOURNAL_SCHEMA}")


def _read_file(path: Path, size: int | None = None) -> Iterator[Event]:
    with path.open("rb") as file:
        data = file.read() if size is None else file.read(size)
    # Split on b"\n" alone: str.splitlines() also splits on U+2028 or U+0085, which JSON
    # keeps unescaped inside a message body. Bytes also make a last line cut mid-character
    # (read while its writer appends) the torn line it is, not a decoding error.
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield EVENT.validate_json(line)
        except ValidationError as exc:
            if number == len(lines):
                return  # the writer died mid-line; everything before it is intact
            reason = exc.errors()[0]["msg"]
            raise JournalError(f"{path}:{number}: not a journal event: {reason}") from None

