"""The scorer at scale: a journal folder scored with DuckDB, a fast lane in SQL and the pure
judge in partitions.

Design. The pure scorer (`harness.continuity.scored`) stays the reference and states every rule;
this module is its fast path for a whole folder and gives the same scorecard, in memory bounded
by DuckDB's limit, a partition, and six floats per owed reminder:

1. DuckDB reads the `*.jsonl` files as they are, with the journal's rules (`seal.json`'s sizes,
   only a torn last line tolerated, schemas 1-3): the bulky kinds (`reminder.*`, `borrower.*`,
   `send.recorded`, `vendor.call`) as projected columns (never the raw requests), the rare
   kinds (run, load, faults, alerts, upgrades, app opens), found by a scan of the lines as
   text, as journal events.
2. In SQL: each send's correlation (client reference, then the body's `ref`). The borrowers
   whose history is plain are judged there (`harness.plain_reminders`, the fast lane).
3. The others get a partition per group of borrowers that share anything the truth links (a
   number, an address, a push token, a reminder id): so a reminder, its sends, its borrower's
   changes and STOP replies, and every send to a number of theirs land in one partition. Each
   partition is judged by the pure code (`harness.truth.rebuild`, `judge_sends`), in `WORKERS`
   forked processes when there are several: phone changes, opt-outs, cancellations, content,
   personal data and test data keep one implementation. What a partition yields is compact:
   per owed settled reminder a `Row` (what the figures read), counts, the first defects and
   witnesses a gate can name, its worst traces.
4. Every partition's rows, as each arrives, are folded (`harness.fold`, as the pure scorer
   folds its reminders), and so is the fast lane, added up in SQL (counts and sorted times,
   its witness candidates one by one, its rows a batch at a time only when a fault step or
   maintenance window may expose them): no row per reminder is held, only the few times per
   reminder the timing figures sort. The scorecard
   is made from the fold by `harness.continuity.card`, as the pure scorer makes it; the
   vendors' figures come from SQL (`_vendor_figures` says the same rules as
   `harness.vendor_figures`).

Where SQL and Python could read a journal differently (a non-ASCII phone number or address,
the body expression matching otherwise in RE2 than in Python's `re`, a line DuckDB refuses),
the engine does not guess: `score_folder` scores that journal with the pure scorer instead.
DuckDB running out of its memory is said as such. One rule of the journal is not checked here:
a bulky line with a field too many, which the pure reader refuses, is read (its known fields
are).
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import duckdb
from pydantic import BaseModel

from harness import plain_reminders
from harness.continuity import Facts, card, fold_for, judge_sends, score
from harness.errors import JournalError, NotifyChaosError
from harness.fault_rows import StepRun, step_runs
from harness.fold import Fold, Row
from harness.journal import (
    EVENT,
    AppOpened,
    BorrowerChanged,
    BorrowerOptedOut,
    Event,
    FaultTouched,
    Journal,
    LoadStarted,
    ReminderChanged,
    ReminderScheduled,
    RunEnded,
    RunStarted,
    SendRecorded,
    read_journal,
    read_seal,
    refuse_newer,
)
from harness.judging import Defect, Exposure, Judged, Judgement
from harness.scenario import Scenario
from harness.scorecard import ReminderTrace, Scorecard, VendorFigures
from harness.timing import percentile
from harness.traces import worst
from harness.truth import Borrower, Truth, rebuild
from harness.verdict import MAX_WITNESSES
from mocks.ledger import leaked_record

ENGINE_FROM = 64 << 20
"""Journals of this many bytes or more (about 30,000 reminders) are scored by the engine;
smaller ones by the pure scorer, which starts faster than DuckDB."""

PARTITION = 25_000
"""Reminders judged together in a process: about 300 MB of Python objects at a time."""

MEMORY_LIMIT = 500 << 20
"""DuckDB's own memory while it loads and partitions (beyond it, it spills to disk), for a
journal of up to `MEMORY_LIMIT * 8` bytes (4 GB, about 2 million reminders); an eighth of a
larger journal's size, at most half the machine's memory. At 10^7 reminders (18 GB) some of
DuckDB's operators ran out of 500 MB."""


def memory_limit(journal_bytes: int) -> int:
    """DuckDB's memory for a journal of `journal_bytes` bytes (`MEMORY_LIMIT`)."""
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(MEMORY_LIMIT, min(journal_bytes // 8, machine // 2))


WORKER_MEMORY_LIMIT = "100MB"
"""DuckDB's memory in each judging process (it only reads one partition at a time)."""

WORKERS = min(2, os.cpu_count() or 1)
"""Processes judging partitions side by side."""

_BULK = ("reminder.scheduled", "reminder.changed", "borrower.changed", "borrower.opted_out",
         "send.recorded", "vendor.call")
_COLUMNS = {
    "t": "DOUBLE", "source": "VARCHAR", "seq": "BIGINT", "kind": "VARCHAR",
    "reminder_id": "VARCHAR", "ref": "VARCHAR", "loan_id": "VARCHAR", "borrower_id": "VARCHAR",
    "name": "VARCHAR", "phone": "VARCHAR", "email": "VARCHAR", "device_token": "VARCHAR",
    "national_id": "VARCHAR", "account": "VARCHAR", "opted_out": "BOOLEAN", "amount": "VARCHAR",
    "due_date": "VARCHAR", "remind_at": "DOUBLE", "send_by": "DOUBLE", "change": "VARCHAR",
    "channel": "VARCHAR", "vendor": "VARCHAR", "message_id": "VARCHAR", "to": "VARCHAR",
    "body": "VARCHAR", "client_ref": "VARCHAR", "handset": "VARCHAR", "inbox_at": "DOUBLE",
    "request_of": "VARCHAR", "outcome": "VARCHAR", "latency": "DOUBLE",
}
_EMPTY: dict[str, Any] = {}
_SendKey = tuple[float, str, int]


class Unsure(Exception):
    """The engine cannot promise the pure scorer's answer for this journal (`score_folder`
    then scores it with the pure scorer)."""


@dataclass
class _Tally:
    """What the partitions add up to: a partition's rows and witnesses until they are folded
    (`merge`), its counts, first defects and worst candidates."""

    rows: list[Row] = field(default_factory=list)
    witnesses: list[Row] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    defects: dict[str, list[tuple[Any, Defect]]] = field(default_factory=dict)
    worst: list[tuple[Judged, Borrower, int]] = field(default_factory=list)

    def add(self, name: str, count: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + count

    def merge(self, other: _Tally, fold: Fold) -> None:
        """Add `other`'s partitions to these, its rows and witnesses into `fold` (not kept)."""
        for row in (*other.rows, *other.witnesses):
            fold.add(row, row.order)
        for name, count in other.counts.items():
            self.add(name, count)
        for name, found in other.defects.items():
            self.defects.setdefault(name, []).extend(found)
        self.worst += other.worst


def score_folder(directory: Path, *, engine: bool | None = None) -> Scorecard:
    """Score the journal in `directory` (its `*.jsonl` files): with the engine (`engine` True,
    or None and the journal is `ENGINE_FROM` bytes or more) unless it cannot promise the pure
    scorer's answer, else with the pure scorer; JournalError as `read_journal` raises it."""
    if engine is None:
        engine = sum(path.stat().st_size for path in directory.glob("*.jsonl")) >= ENGINE_FROM
    if engine:
        try:
            return score_engine(directory)
        except Unsure:
            pass
    return score(read_journal(directory))


def score_engine(directory: Path, partition: int = PARTITION) -> Scorecard:
    """Score the journal in `directory` with the engine alone, about `partition` reminders
    judged at a time; Unsure when it cannot promise the pure scorer's answer."""
    with tempfile.TemporaryDirectory(prefix="notifychaos-engine-") as work, \
            _no_cycle_collection():
        files = _files(directory, Path(work))
        # In a file, which worker processes can read. No insertion order to keep: every query
        # that needs an order says it.
        database = str(Path(work) / "journal.duckdb")
        limit = memory_limit(sum(Path(path).stat().st_size for path in files))
        con = _connect(database, memory_limit=f"{limit >> 20}MB",
                       temp_directory=str(Path(work) / "spill"), preserve_insertion_order=False)
        try:
            journal, job, parts = _prepare(con, files, partition)
            fold = fold_for(journal, job.scenario, job.runs)
            vendors = _vendor_figures(con, [*job.scenario.vendors, *job.scenario.channels])
            # Forked only from a process of one thread (the connection closed by then): a
            # fork copies no other thread, and a lock one of them held would stay held.
            workers = min(WORKERS, parts) if "fork" in multiprocessing.get_all_start_methods() \
                and threading.active_count() == 1 else 1
            if workers == 1:
                tally = _Tally()
                for part in range(parts):
                    tally.merge(_judge_some(con, [part], job), fold)
                plain = _fold_plain(con, fold)
        except duckdb.OutOfMemoryException as exc:
            raise NotifyChaosError(f"scoring {directory}: DuckDB ran out of its "
                                   f"{limit >> 20} MB: {str(exc).splitlines()[0]}") from None
        finally:
            con.close()
        if workers > 1:
            tally = _judge_partitions(database, parts, job, workers, fold)
            # The lane's rows only now, so that no worker is forked holding the fold.
            with _connect(database, read_only=True, memory_limit=f"{limit >> 20}MB") as con:
                plain = _fold_plain(con, fold)
        tally.add("duplicates", plain.duplicates)
        tally.add("unsettled", plain.unsettled)
        return card(journal, _facts(tally, job, vendors, fold))


def _fold_plain(con: duckdb.DuckDBPyConnection, fold: Fold) -> plain_reminders.PlainVerdicts:
    """The fast lane's reminders into `fold`: added up in SQL, their witness candidates one
    by one, and each one only if a fault step or maintenance window may expose it."""
    plain = plain_reminders.verdicts(con, fold.add_witness)
    fold.add_counted(plain.counted)
    if fold.exposing:
        plain_reminders.exposures(con, fold.expose)
    return plain


def _connect(database: str, read_only: bool = False, **config: Any
             ) -> duckdb.DuckDBPyConnection:
    """A connection to the engine's database file with `config`, drawing no progress bar (a
    session setting only: DuckDB draws one on the terminal for a long query)."""
    con = duckdb.connect(database, read_only=read_only, config=config)
    con.execute("SET enable_progress_bar = false")
    return con


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    # Millions of acyclic objects: the cyclic collector would rescan them again and again
    # (30-50 % of the pure scorer's time at 10^6) and find nothing to free.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _files(directory: Path, work: Path) -> list[str]:
    """The files to read, as `read_journal` reads them: only what a seal names, up to its
    size; a last line that is not an event (torn) is left out by copying what precedes it."""
    sizes = read_seal(directory)
    found = []
    for index, path in enumerate(sorted(directory.glob("*.jsonl"))):
        refuse_newer(path)
        if sizes is not None and path.name not in sizes:
            continue
        size = path.stat().st_size if sizes is None else min(sizes[path.name],
                                                             path.stat().st_size)
        keep = _whole(path, size)
        if keep == path.stat().st_size:
            found.append(str(path))
        elif keep > 0:
            copy = work / f"{index}-{path.name}"
            with path.open("rb") as source, copy.open("wb") as target:
                _copy(source, target, keep)
            found.append(str(copy))
    return found


def _whole(path: Path, size: int) -> int:
    """How many of the first `size` bytes of `path` are whole events: all of them unless the
    last line (after the last newline) is not one."""
    with path.open("rb") as file:
        step, end = 1 << 16, size
        while end > 0:
            start = max(0, end - step)
            file.seek(start)
            chunk = file.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                cut = start + newline + 1
                break
            end, step = start, step * 2
        else:
            cut = 0
        file.seek(cut)
        tail = file.read(size - cut)
    if not tail.strip():
        return size
    try:
        EVENT.validate_json(tail)
    except ValueError:
        return cut  # the writer died mid-line; everything before it is intact
    return size


def _copy(source: Any, target: Any, size: int) -> None:
    """The first `size` bytes of `source` into `target`, ending with a newline."""
    left, last = size, b"\n"
    while left > 0:
        chunk = source.read(min(left, 1 << 24))
        if not chunk:
            break
        target.write(chunk)
        left -= len(chunk)
        last = chunk[-1:]
    if last != b"\n":
        target.write(b"\n")


@dataclass(frozen=True)
class _Job:
    """What every partition is judged with."""

    scenario: Scenario
    end: float
    leaks: tuple[FaultTouched, ...]
    """The leaked test records (`harness.truth.Truth.test_refs`): every partition's."""
    runs: tuple[StepRun, ...]
    t0: float


def _prepare(con: duckdb.DuckDBPyConnection, files: list[str], partition: int
             ) -> tuple[Journal, _Job, int]:
    """Load and partition the journal (the plain reminders judged): its rare events, what
    judging needs, and how many partitions."""
    if not files:
        raise JournalError("the journal has no run.started event: nothing to score")
    small = _small_events(con, files)
    started = next((event for event in small if isinstance(event, RunStarted)), None)
    if started is None:
        raise JournalError("the journal has no run.started event: nothing to score")
    scenario = started.scenario
    _load(con, files, scenario)
    ended = next((event for event in small if isinstance(event, RunEnded)), None)
    bulk_end = _one(con, "SELECT max(t) FROM ev")
    end = ended.t if ended else max(
        [event.t for event in small] + ([] if bulk_end is None else [float(bulk_end)]))
    _check_ascii(con)
    leaks = tuple(event for event in small if isinstance(event, FaultTouched)
                  and leaked_record(event) is not None)
    parts = _partition(con, scenario, partition, end, bool(leaks))
    journal = Journal(tuple(sorted([*small, *_app_truth(con, small)], key=_key)))
    load = next((event for event in small if isinstance(event, LoadStarted)), None)
    job = _Job(scenario=scenario, end=end, leaks=leaks,
               runs=tuple(step_runs(journal, scenario, end)),
               t0=load.t if load is not None else started.t)
    return journal, job, parts


def _key(event: Event) -> tuple[float, str, int]:
    return (event.t, event.source, event.seq)


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    return None if row is None else row[0]


def _small_events(con: duckdb.DuckDBPyConnection, files: list[str]) -> list[Event]:
    """Every event but the bulky kinds, validated as `read_journal` validates them."""
    # Each line as text (no JSON is parsed; U+0001, the delimiter, is escaped in any JSON): a
    # line that starts as the journal writes a bulky event is left for `_load`; any other line
    # is parsed here, and dropped if bulky after all.
    bulky = ('^\\{"t":[^,]*,"source":"[^"]*","seq":[0-9]+,"kind":"(?:'
             + "|".join(re.escape(kind) for kind in _BULK) + ')"')
    try:
        lines = con.execute(
            "SELECT line FROM read_csv($files, columns={'line': 'VARCHAR'}, header=false,"
            f" delim='{chr(1)}', quote='', escape='', auto_detect=false,"
            " max_line_size=33554432, buffer_size=67108864)"
            " WHERE NOT regexp_matches(line, $bulky) AND trim(line) <> ''",
            {"files": files, "bulky": bulky}).fetchall()
    except duckdb.OutOfMemoryException:
        raise  # no refusal of the journal: `score_engine` says it
    except duckdb.Error as exc:
        raise Unsure(str(exc)) from None
    try:
        events = [EVENT.validate_json(line) for (line,) in lines]
    except ValueError as exc:
        raise Unsure(str(exc)) from None
    return [event for event in events if event.kind not in _BULK]


def _load(con: duckdb.DuckDBPyConnection, files: list[str], scenario: Scenario) -> None:
    """The bulky kinds' columns into table `ev`, with pydantic's defaults for what an older
    schema did not write, and each send's references (`cref`, `bref`: `_references`)."""
    con.execute(_NATIONAL)
    client, body = _references(scenario)
    try:
        con.execute(
            "CREATE TABLE ev AS SELECT *, nat(phone) AS pn,"
            " CASE WHEN kind = 'send.recorded' AND channel = 'sms' THEN nat(\"to\") END AS tn,"
            f" CASE WHEN kind = 'send.recorded' THEN {client} END AS cref,"
            f" CASE WHEN kind = 'send.recorded' THEN {body} END AS bref"
            " FROM (SELECT * REPLACE ("
            " coalesce(channel, 'sms') AS channel, coalesce(handset, 'delivered') AS handset,"
            " coalesce(email, '') AS email, coalesce(device_token, '') AS device_token,"
            " coalesce(national_id, '') AS national_id, coalesce(account, '') AS account,"
            " coalesce(opted_out, false) AS opted_out)"
            " FROM read_json($files, format='newline_delimited', columns=$columns,"
            "  maximum_object_size=33554432)"
            " WHERE kind IN (SELECT unnest($bulk::VARCHAR[])))",
            {"files": files, "columns": _COLUMNS, "bulk": list(_BULK)})
    except duckdb.OutOfMemoryException:
        raise  # no refusal of the journal: `score_engine` says it
    except duckdb.Error as exc:
        raise Unsure(str(exc)) from None
    # A bulky event missing what pydantic requires, or with a value it refuses, is malformed:
    # the pure reader says where. (A field too many is not looked for.)
    missing = _one(con, """
        SELECT count(*) FROM ev WHERE t IS NULL OR source IS NULL OR seq IS NULL
         OR (kind = 'reminder.scheduled' AND (reminder_id IS NULL OR ref IS NULL
             OR loan_id IS NULL OR borrower_id IS NULL OR name IS NULL OR phone IS NULL
             OR amount IS NULL OR due_date IS NULL OR remind_at IS NULL OR send_by IS NULL))
         OR (kind = 'reminder.changed' AND (reminder_id IS NULL OR change IS NULL
             OR amount IS NULL))
         OR (kind = 'borrower.changed' AND (borrower_id IS NULL OR phone IS NULL))
         OR (kind = 'borrower.opted_out' AND (phone IS NULL OR vendor IS NULL))
         OR (kind = 'send.recorded' AND (vendor IS NULL OR message_id IS NULL OR "to" IS NULL
             OR body IS NULL))
         OR (kind = 'vendor.call' AND (vendor IS NULL OR outcome IS NULL OR latency IS NULL))
         OR (kind = 'send.recorded' AND (channel NOT IN ('sms', 'push', 'email')
             OR handset NOT IN ('delivered', 'spam', 'absent', 'dropped')))
         OR (kind = 'reminder.changed' AND change NOT IN ('repaid', 'partially_repaid'))
         OR (kind = 'vendor.call'
             AND outcome NOT IN ('accepted', 'read', 'rejected', 'refused', 'lost'))""")
    if missing:
        raise Unsure("a bulky event lacks a field")


def _references(scenario: Scenario) -> tuple[str, str]:
    """A send's references in SQL, as `harness.judging.Correlator` reads them: its client
    reference, and the `ref` group of the scenario's body pattern (NULL when it does not
    match). Computed once, as the JSON is read: the `sends` view is read three times, and
    extracting the pattern each time cost more than the rest of those queries."""
    rule = scenario.reminders.correlate
    client = "CASE WHEN client_ref <> '' THEN client_ref END" if rule.client_ref else "NULL"
    if not rule.body:
        return client, "NULL"
    pattern = "'" + rule.body.replace("'", "''") + "'"
    group = re.compile(rule.body).groupindex["ref"]
    # One extraction per body; an empty one may still be a match (of an empty `ref`).
    found = f"regexp_extract(body, {pattern}, {group})"
    return client, (f"CASE WHEN {found} <> '' THEN {found} "
                    f"WHEN regexp_matches(body, {pattern}) THEN '' END")


def _check_ascii(con: duckdb.DuckDBPyConnection) -> None:
    """SQL's digits and lower case are Python's only for ASCII numbers and addresses."""
    odd = _one(con, """
        SELECT count(*) FROM ev
        WHERE (phone IS NOT NULL AND strlen(phone) <> length(phone))
           OR (strlen(email) <> length(email))
           OR (kind = 'send.recorded' AND channel <> 'push' AND strlen("to") <> length("to"))""")
    if odd:
        raise Unsure("a non-ASCII number or address")


_NATIONAL = r"""
CREATE MACRO digits(p) AS regexp_replace(p, '[^0-9]', '', 'g');
CREATE MACRO nat_of(d) AS CASE WHEN starts_with(d, '0086') THEN d[5:]
                                 WHEN strlen(d) = 13 AND starts_with(d, '86') THEN d[3:]
                                 ELSE d END;
CREATE MACRO nat(p) AS nat_of(digits(p));
"""
"""`harness.truth.national` in SQL: the digits, without a leading 0086, or 86 before 11 (the
prefixes tested, not matched by a second pattern: a third of the time)."""


def _partition(con: duckdb.DuckDBPyConnection, scenario: Scenario, partition: int, end: float,
               leaks: bool) -> int:
    """Judge the plain borrowers (`harness.plain_reminders`) and give every other bulky event
    its partition (table `parted`); how many partitions."""
    # Tables only this connection reads are temporary: in DuckDB's memory (spilled past its
    # limit), not compressed and written to the database file (which cost a quarter of the
    # partitioning's time at 10^6). `parted` and the lane's `plain` are read by other
    # connections, so they are written.
    # What the truth links borrowers by: numbers, addresses and push tokens (one namespace, as
    # `Truth.addresses` is one dictionary), and reminder ids.
    con.execute("""
        CREATE TEMP TABLE edges AS
        SELECT DISTINCT b, ident FROM (
            SELECT borrower_id AS b, 'p:' || pn AS ident FROM ev
             WHERE kind IN ('reminder.scheduled', 'borrower.changed')
            UNION ALL SELECT borrower_id, 'a:' || lower(email) FROM ev
             WHERE kind = 'reminder.scheduled' AND email <> ''
            UNION ALL SELECT borrower_id, 'a:' || device_token FROM ev
             WHERE kind = 'reminder.scheduled' AND device_token <> ''
            UNION ALL SELECT borrower_id, 'r:' || reminder_id FROM ev
             WHERE kind = 'reminder.scheduled')""")
    shared = con.execute("""
        SELECT b, ident FROM edges WHERE ident IN (
            SELECT ident FROM edges GROUP BY ident HAVING count(*) > 1)""").fetchall()
    con.execute("CREATE TEMP TABLE roots (b VARCHAR, root VARCHAR)")
    roots = _components(shared)
    if roots:
        con.executemany("INSERT INTO roots VALUES (?, ?)", list(roots.items()))
    # The reminders in the order they were first scheduled (`Truth.reminders`), and the one
    # each reference names (the last one first scheduled with it, as `Truth.by_ref`).
    con.execute("""
        CREATE TEMP TABLE firsts AS
        SELECT reminder_id, arg_min(ref, (t, source, seq)) AS ref,
               row_number() OVER (ORDER BY min((t, source, seq))) AS ord
        FROM ev WHERE kind = 'reminder.scheduled' GROUP BY reminder_id""")
    con.execute("""
        CREATE TEMP TABLE by_ref AS
        SELECT ref, arg_max(reminder_id, ord) AS reminder_id FROM firsts GROUP BY ref""")
    # The references were read with the JSON (`_load`): the view only joins them.
    con.execute("""
        CREATE TEMP VIEW sends AS
        SELECT s.*, coalesce(c.reminder_id, r.reminder_id) AS rid
        FROM (SELECT * FROM ev WHERE kind = 'send.recorded') s
        LEFT JOIN by_ref c ON c.ref = s.cref LEFT JOIN by_ref r ON r.ref = s.bref""")
    if plain_reminders.lane_open(scenario, leaks):
        plain_reminders.judge(con, scenario, end)
    else:
        plain_reminders.closed(con)
    reminders = _one(con, "SELECT count(DISTINCT reminder_id) FROM ev "
                          "WHERE kind = 'reminder.scheduled' "
                          "AND borrower_id IN (SELECT b FROM rest_b)") or 0
    parts = max(1, math.ceil(reminders / partition))
    con.execute(f"""
        CREATE TEMP TABLE bpart AS
        SELECT b, hash(coalesce(root, b)) % {parts} AS part
        FROM rest_b LEFT JOIN roots USING (b)""")
    con.execute("CREATE TEMP TABLE ipart AS "
                "SELECT DISTINCT ident, part FROM edges JOIN bpart USING (b)")
    # A plain borrower's events are all judged already: their idents are in no partition, and
    # a send correlated with one of their reminders (no partition either) is left out.
    con.execute("""
        CREATE TABLE parted AS
        SELECT * FROM (
            SELECT e.*, f.ord, bp.part FROM ev e JOIN bpart bp ON bp.b = e.borrower_id
              LEFT JOIN firsts f ON e.kind = 'reminder.scheduled'
                               AND f.reminder_id = e.reminder_id
             WHERE e.kind IN ('reminder.scheduled', 'borrower.changed')
            UNION ALL BY NAME
            SELECT e.*, ip.part FROM ev e JOIN ipart ip ON ip.ident = 'r:' || e.reminder_id
             WHERE e.kind = 'reminder.changed'
            UNION ALL BY NAME
            SELECT e.*, ip.part FROM ev e JOIN ipart ip ON ip.ident = 'p:' || e.pn
             WHERE e.kind = 'borrower.opted_out'
            UNION ALL BY NAME
            SELECT s.*, coalesce(ip.part, 0) AS part FROM sends s LEFT JOIN ipart ip
              ON ip.ident = CASE WHEN s.rid IS NOT NULL THEN 'r:' || s.rid
                                 WHEN s.channel = 'sms' THEN 'p:' || s.tn
                                 WHEN s.channel = 'email' THEN 'a:' || lower(s."to")
                                 ELSE 'a:' || s."to" END
             WHERE s.rid IS NULL OR ip.part IS NOT NULL)
        """)
    return parts


def _components(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Each borrower that shares an identifier with another, and its group's root (the least
    borrower id): union-find over the few shared identifiers."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for borrower, ident in pairs:
        one, two = root(borrower), root("#" + ident)
        if one != two:
            parent[max(one, two)] = min(one, two)
    groups: dict[str, str] = {}
    for node in parent:
        if not node.startswith("#"):
            top = root(node)
            groups[top] = min(groups.get(top, node), node)
    return {node: groups[root(node)] for node in parent if not node.startswith("#")}


def _app_truth(con: duckdb.DuckDBPyConnection, small: Sequence[Event]) -> list[Event]:
    """The reminders of the borrowers who opened the app: what `harness.app_figures` checks
    the app's answers against."""
    opened = sorted({event.borrower_id for event in small if isinstance(event, AppOpened)})
    if not opened:
        return []
    con.execute("CREATE TEMP TABLE opened (b VARCHAR)")
    con.executemany("INSERT INTO opened VALUES (?)", [(b,) for b in opened])
    rows = con.execute("""
        SELECT * FROM ev
        WHERE (kind = 'reminder.scheduled' AND borrower_id IN (SELECT b FROM opened))
           OR (kind = 'reminder.changed' AND reminder_id IN (
               SELECT reminder_id FROM ev WHERE kind = 'reminder.scheduled'
                  AND borrower_id IN (SELECT b FROM opened)))
        ORDER BY t, source, seq""")
    return list(_events(rows))


def _events(cursor: duckdb.DuckDBPyConnection) -> Iterator[Any]:
    names = [column[0] for column in cursor.description or ()]
    while batch := cursor.fetchmany(10_000):
        for values in batch:
            yield _event(dict(zip(names, values, strict=True)))


def _event(row: dict[str, Any]) -> Event | tuple[SendRecorded, tuple[str | None, ...]]:
    """A bulky event rebuilt from its columns (a send with the references SQL read)."""
    kind = row["kind"]
    base = {"t": row["t"], "source": row["source"], "seq": row["seq"], "kind": kind}
    if kind == "reminder.scheduled":
        return _trusted(
            ReminderScheduled, base, reminder_id=row["reminder_id"], ref=row["ref"],
            loan_id=row["loan_id"], borrower_id=row["borrower_id"], name=row["name"],
            phone=row["phone"], email=row["email"], device_token=row["device_token"],
            national_id=row["national_id"], account=row["account"],
            opted_out=row["opted_out"], amount=row["amount"], due_date=row["due_date"],
            remind_at=row["remind_at"], send_by=row["send_by"])
    if kind == "reminder.changed":
        return _trusted(ReminderChanged, base, reminder_id=row["reminder_id"],
                        change=row["change"], amount=row["amount"])
    if kind == "borrower.changed":
        return _trusted(BorrowerChanged, base, borrower_id=row["borrower_id"],
                        phone=row["phone"], opted_out=row["opted_out"])
    if kind == "borrower.opted_out":
        return _trusted(BorrowerOptedOut, base, phone=row["phone"], vendor=row["vendor"])
    send = _trusted(
        SendRecorded, base, channel=row["channel"], vendor=row["vendor"],
        message_id=row["message_id"], to=row["to"], body=row["body"],
        client_ref=row["client_ref"], handset=row["handset"], inbox_at=row["inbox_at"],
        request=_EMPTY, request_of=row["request_of"])
    return send, (row.get("cref"), row.get("bref"))


M = TypeVar("M", bound=BaseModel)


def _trusted(cls: type[M], base: dict[str, Any], **values: Any) -> M:
    """`cls.model_construct(**base, **values)` for values that name every field, without its
    per-field work (most of its time)."""
    made = cls.__new__(cls)
    fields = {**base, **values}
    object.__setattr__(made, "__dict__", fields)
    object.__setattr__(made, "__pydantic_fields_set__", set(fields))
    object.__setattr__(made, "__pydantic_extra__", None)
    object.__setattr__(made, "__pydantic_private__", None)
    return made


def _judge_partitions(database: str, parts: int, job: _Job, workers: int, fold: Fold
                      ) -> _Tally:
    """Judge every partition of `database` with the pure code, in `workers` forked processes
    (so that a caller's unguarded script is not run again, as spawn would); what they add up
    to, their rows folded into `fold`."""
    tally = _Tally()
    # One partition per task, a few tasks in flight: a worker holds one partition's objects
    # and the parent at most a few results waiting (the order they add up in does not matter).
    todo = iter(range(parts))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending = {pool.submit(_judge_file, database, part, job)
                   for part in islice(todo, 2 * workers)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                tally.merge(future.result(), fold)
                pending |= {pool.submit(_judge_file, database, part, job)
                            for part in islice(todo, 1)}
    return tally


def _judge_file(database: str, part: int, job: _Job) -> _Tally:
    """Judge partition `part` of the file `database` (in a worker process)."""
    with _no_cycle_collection(), _connect(database, read_only=True,
                                          memory_limit=WORKER_MEMORY_LIMIT, threads=1) as con:
        return _judge_some(con, [part], job)


def _judge_some(con: duckdb.DuckDBPyConnection, parts: Sequence[int], job: _Job) -> _Tally:
    """Judge the partitions `parts` of table `parted` with the pure code."""
    tally = _Tally()
    rule = job.scenario.reminders.correlate
    body = re.compile(rule.body) if rule.body else None
    frame = (job.runs, job.t0)
    for part in parts:
        cursor = con.execute("SELECT * FROM parted WHERE part = ? ORDER BY t, source, seq",
                             [part])
        events: list[Event] = [*job.leaks]
        sends: list[SendRecorded] = []
        order: dict[str, int] = {}
        names = [column[0] for column in cursor.description or ()]
        while batch := cursor.fetchmany(10_000):
            for values in batch:
                row = dict(zip(names, values, strict=True))
                made = _event(row)
                if isinstance(made, tuple):
                    send, refs = made
                    _same_refs(send, refs, rule.client_ref, body)
                    sends.append(send)
                else:
                    events.append(made)
                    if row["ord"] is not None:
                        order.setdefault(row["reminder_id"], row["ord"])
        events.sort(key=_key)
        truth = rebuild(Journal(tuple(events)))
        judgement = judge_sends(truth, sends, job.scenario, job.end)
        _tally(tally, truth, judgement, order, frame)
        del events, sends, truth, judgement
    return tally


def _same_refs(send: SendRecorded, refs: tuple[str | None, ...], client_ref: bool,
               body: re.Pattern[str] | None) -> None:
    """Refuse a send whose references SQL read otherwise than `harness.judging.Correlator`."""
    wanted_client = send.client_ref if client_ref and send.client_ref else None
    match = body.search(send.body) if body else None
    wanted_body = None if match is None else match.group("ref")
    if (wanted_client, wanted_body) != refs:
        raise Unsure(f"message {send.message_id}: references read otherwise in SQL")


def _tally(tally: _Tally, truth: Truth, judgement: Judgement, order: Mapping[str, int],
           frame: tuple[Sequence[StepRun], float]) -> None:
    """Add a partition's judgement to `tally`."""
    duplicates = 0
    first_send: dict[str, _SendKey] = {}
    for judged in judgement.reminders:
        rid = judged.reminder_id
        if judged.copies:
            first_send[rid] = _send_key(judged.copies[0].send)
        extra = judged.extra_copies
        tally.add("duplicates", extra)
        tally.add("cancelled", judged.cancelled)
        tally.add("unsettled", judged.owed and not judged.settled)
        if judged.settled:
            tally.rows.append(Row.of(judged, order[rid]))
        elif extra and duplicates < MAX_WITNESSES:
            duplicates += 1
            tally.witnesses.append(Row.of(judged, order[rid]))
    tally.add("unmatched", judgement.unmatched)
    tally.add("opted_out", len(truth.opted_out_in_run))
    traced = {trace.reminder_id for trace in worst(judgement.settled, truth, *frame)}
    tally.worst.extend((judged, truth.borrowers[judged.truth.scheduled.borrower_id],
                        order[judged.reminder_id])
                       for judged in judgement.settled if judged.reminder_id in traced)

    def grouped(defect: Defect) -> Any:
        rid = defect.reminder_id
        return (0, first_send[rid], _send_key(defect.send)) if rid is not None else \
            (1, _send_key(defect.send))

    def in_order(defect: Defect) -> Any:
        return _send_key(defect.send)

    for name, key in (("sent_to_opted_out", grouped), ("sent_after_repayment", grouped),
                      ("missing_optout_notice", grouped), ("sent_to_test_data", in_order),
                      ("pii_exposed", in_order)):
        found: tuple[Defect, ...] = getattr(judgement, name)
        tally.add(name, len(found))
        tally.defects.setdefault(name, []).extend(
            (key(defect), defect) for defect in _first(name, found))


def _first(name: str, defects: Sequence[Defect]) -> list[Defect]:
    """The defects up to the `MAX_WITNESSES`-th distinct witness a gate could name."""
    kept: list[Defect] = []
    seen: set[str] = set()
    for defect in defects:
        witness = defect.reminder_id
        if name == "pii_exposed" and witness is None:
            witness = f"message {defect.send.message_id}"
        if witness is None:
            continue
        kept.append(defect)
        seen.add(witness)
        if len(seen) == MAX_WITNESSES:
            break
    return kept


def _send_key(send: SendRecorded) -> _SendKey:
    return (send.t, send.source, send.seq)


def _facts(tally: _Tally, job: _Job, vendors: dict[str, VendorFigures], fold: Fold) -> Facts:
    """The scorecard's facts from what the partitions added up to and the reminders folded."""

    def defects(name: str) -> tuple[Any, ...]:
        return tuple(defect for _, defect in sorted(tally.defects.get(name, []),
                                                    key=lambda d: d[0]))

    pii: tuple[Exposure, ...] = defects("pii_exposed")
    judgement = Judgement(
        reminders=(), unmatched=tally.counts.get("unmatched", 0),
        sent_to_opted_out=defects("sent_to_opted_out"),
        sent_after_repayment=defects("sent_after_repayment"),
        sent_to_test_data=defects("sent_to_test_data"), pii_exposed=pii,
        missing_optout_notice=defects("missing_optout_notice"))
    candidates = sorted(tally.worst, key=lambda item: item[2])
    borrowers = {borrower.borrower_id: borrower for _, borrower, _ in candidates}
    known = Truth(reminders={}, by_ref={}, borrowers=borrowers, owners={},
                  opted_out_in_run=frozenset(), test_refs={}, test_phones={}, addresses={})
    traces: list[ReminderTrace] = worst([judged for judged, _, _ in candidates], known,
                                        job.runs, job.t0)
    counts = {name: tally.counts.get(name, 0) for name in (
        "unsettled", "cancelled", "duplicates", "unmatched", "opted_out", "sent_to_opted_out",
        "sent_after_repayment", "sent_to_test_data", "pii_exposed", "missing_optout_notice")}
    return Facts(
        end=job.end, folded=fold.done(), judgement=judgement, unsettled=counts["unsettled"],
        cancelled=counts["cancelled"], duplicates=counts["duplicates"],
        unmatched=counts["unmatched"], opted_out=counts["opted_out"],
        sent_to_opted_out=counts["sent_to_opted_out"],
        sent_after_repayment=counts["sent_after_repayment"],
        sent_to_test_data=counts["sent_to_test_data"], pii_exposed=counts["pii_exposed"],
        missing_optout_notice=counts["missing_optout_notice"],
        vendors=vendors, worst=traces)


def _vendor_figures(con: duckdb.DuckDBPyConnection, names: Sequence[str]
                    ) -> dict[str, VendorFigures]:
    """`harness.vendor_figures.vendor_figures` over the `vendor.call` events, in SQL (its
    rules: sends are every call but lookups; availability = (accepted + rejected) / sends; p95
    over the sends answered)."""
    found = {}
    for name in names:
        counts = dict(con.execute(
            "SELECT outcome, count(*) FROM ev WHERE kind = 'vendor.call' AND vendor = ? "
            "GROUP BY outcome", [name]).fetchall())
        sends = sum(count for outcome, count in counts.items() if outcome != "read")
        answered = counts.get("accepted", 0) + counts.get("rejected", 0)
        latencies = [value for (value,) in con.execute(
            "SELECT latency FROM ev WHERE kind = 'vendor.call' AND vendor = ? "
            "AND outcome NOT IN ('read', 'lost')", [name]).fetchall()]
        found[name] = VendorFigures(
            sends=sends, accepted=counts.get("accepted", 0),
            rejected=counts.get("rejected", 0), refused=counts.get("refused", 0),
            lost=counts.get("lost", 0), reads=counts.get("read", 0),
            availability=round(answered / sends, 6) if sends else None,
            p95_latency=percentile(latencies, 0.95))
    return found


