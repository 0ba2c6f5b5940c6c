"""The SQLite outbox: the newest version of each reminder read from the ledger's feed, its send
state, borrowers' STOP replies, the feed's cursor, and (active/standby) the lease that says which
instance may send."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .reminder import Reminder, ReminderRecord
from .schema import SCHEMAS, Schema, UnknownSchema, create, schema_of
from .settings import HaConfig

# How long a writer waits for the other instance's write lock: their writes take microseconds.
BUSY_TIMEOUT = 5.0

# A late "sent" callback must not overwrite a final delivery state.
_FINAL_DELIVERY = ("delivered", "undelivered", "failed")

# The send states a worker may claim: due, or in doubt (a vendor may have sent it, and is to be
# asked again before anything else is tried).
_CLAIMABLE = ("pending", "in_doubt")
UNSENT = (*_CLAIMABLE, "sending")
"""The states of a reminder not known to be sent: due, in doubt, or asked of a vendor with no
answer kept."""


class OutboxError(Exception):
    """An outbox this version cannot use (its message is the one line to print)."""


class LeaseLost(Exception):
    """A fenced write by an instance that no longer holds the lease: it must not send."""


@dataclass(frozen=True)
class Doubt:
    """A send whose answer was lost while its vendor could not be asked about it: the message
    that vendor may have sent."""

    vendor: str
    message: Reminder


@dataclass(frozen=True)
class OutboxRow:
    """A claimed row: the highest version of the feed's record, how often it was tried, and
    the send in doubt to settle first, if any."""

    record: ReminderRecord
    attempts: int
    doubt: Doubt | None = None


@dataclass(frozen=True)
class InterruptedSend:
    """A row a previous process left mid-send: the message it handed to `vendor`, if it got
    that far."""

    reminder_id: str
    vendor: str | None
    message: Reminder | None


@dataclass(frozen=True)
class Fallback:
    """The channel after SMS a reminder is on, and how often it failed there."""

    channel: str
    tries: int


@dataclass(frozen=True)
class _Held:
    holder: str
    term: int


class Outbox:
    """Single-connection store used from the event loop thread only.

    Every call is a short local transaction, so it runs inline on the event loop rather than
    in a thread; with no await inside a call, worker tasks never interleave within one. Writes
    take the write lock up front (BEGIN IMMEDIATE), as another instance may share the file.

    With `ha` (active/standby), every write that reads the feed or sends is fenced: it
    checks, in its own transaction, that this instance still holds the lease it took, and
    raises LeaseLost if not. Delivery reports and STOP replies are facts to keep whoever
    records them, and are not fenced.
    """

    def __init__(self, path: str, version: int, ha: HaConfig | None = None) -> None:
        self._schema: Schema = SCHEMAS[version]
        self._ha = ha
        self._held: _Held | None = None
        # Transactions are explicit (BEGIN IMMEDIATE in _write), never opened implicitly.
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a process crash; only an OS crash can lose the last commits.
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._write():
                self._adopt(path)
        except BaseException:
            self._db.close()
            raise

    def _adopt(self, path: str) -> None:
        try:
            found = schema_of(self._db)
        except UnknownSchema as exc:
            raise OutboxError(f"outbox {path} is no outbox schema known ({exc})") from None
        wanted = self._schema.version
        if found is not None and found != wanted:
            fix = (
                f"run python -m examples.reminder_service.migrate {path}"
                if found < wanted
                else "there is no downgrade: restore the copy taken before migrating"
            )
            raise OutboxError(
                f"outbox {path} is schema {found}; version {wanted} needs schema {wanted}: {fix}"
            )
        # A new outbox gets its tables; an older one of this schema (IF NOT EXISTS) its lease.
        create(self._db, self._schema)

    def close(self) -> None:
        self._db.close()

    # The lease ------------------------------------------------------------------------------

    def take_lease(self) -> int | None:
        """Take the lease if nobody holds it (absent or expired); returns the new term."""
        assert self._ha is not None, "the lease is for active/standby mode"
        now = time.time()
        with self._write():
            row = self._db.execute("SELECT term, expires_at FROM lease WHERE id = 0").fetchone()
            if row is not None and float(row[1]) > now:
                return None
            term = 1 if row is None else int(row[0]) + 1
            self._db.execute(
                "INSERT INTO lease (id, holder, term, expires_at) VALUES (0, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,"
                " term = excluded.term, expires_at = excluded.expires_at",
                (self._ha.instance, term, now + self._ha.lease_ttl),
            )
        self._held = _Held(self._ha.instance, term)
        return term

    def renew_lease(self) -> bool:
        """Extend the lease held; False (and no longer held) if it expired or was taken."""
        held = self._held
        if held is None or self._ha is None:
            return False
        now = time.time()
        with self._write():
            renewed = self._db.execute(
                "UPDATE lease SET expires_at = ?"
                " WHERE id = 0 AND holder = ? AND term = ? AND expires_at > ?",
                (now + self._ha.lease_ttl, held.holder, held.term, now),
            ).rowcount
        if not renewed:
            self._held = None
        return bool(renewed)

    def release_lease(self) -> None:
        """Give the lease up at once (a clean stop), so that a standby need not wait it out."""
        held, self._held = self._held, None
        if held is None:
            return
        with self._write():
            self._db.execute(
                "UPDATE lease SET expires_at = 0 WHERE id = 0 AND holder = ? AND term = ?",
                (held.holder, held.term),
            )

    # The feed -------------------------------------------------------------------------------

    def cursor(self) -> int:
        row = self._db.execute(
            f"SELECT value FROM {self._schema.cursor} WHERE id = 0"
        ).fetchone()
        return int(row[0]) if row else 0

    def add(self, records: Sequence[ReminderRecord], cursor: int) -> int:
        """Store a feed page and its cursor atomically; returns how many rows it created or
        moved to a newer version."""
        now = time.time()
        params = [
            {
                "id": r.reminder_id,
                "ref": r.ref,
                "version": r.version,
                "record": r.to_json(),
                "remind_at": r.remind_at.timestamp(),
                "now": now,
            }
            for r in records
        ]
        first, *rest = self._schema.upsert
        with self._write(fenced=True):
            before = self._db.total_changes
            self._db.executemany(first, params)
            stored = self._db.total_changes - before
            for statement in rest:
                self._db.executemany(statement, params)
            self._db.execute(
                f"INSERT INTO {self._schema.cursor} (id, value) VALUES (0, ?)"
                " ON CONFLICT (id) DO UPDATE SET value = excluded.value",
                (cursor,),
            )
        return stored

    # Sending --------------------------------------------------------------------------------

    def interrupted(self) -> list[InterruptedSend]:
        """The rows a previous process left in `sending` or `in_doubt`: it may have died after
        asking a vendor but before recording the answer, so the vendor may have sent them."""
        s = self._schema
        rows = self._db.execute(
            f"SELECT reminder_id, vendor, {s.asked} FROM {s.sends}"
            f" WHERE {s.status} IN ('sending', 'in_doubt') ORDER BY rowid"
        )
        return [
            InterruptedSend(
                str(reminder_id), vendor, None if asked is None else Reminder.from_json(asked)
            )
            for reminder_id, vendor, asked in rows
        ]

    def requeue(self, reminder_id: str) -> None:
        s = self._schema
        self._update(reminder_id, f"{s.status} = 'pending', {s.due} = 0")

    def mark_trying(self, message: Reminder, vendor: str) -> None:
        """Note what is being asked of which vendor, so that a restart knows whom to ask
        about which message."""
        self._update(
            message.reminder_id, f"vendor = ?, {self._schema.asked} = ?", vendor, message.to_json()
        )

    def claim(self) -> OutboxRow | None:
        """The claimable row due longest, claimed as `claim_due` claims it; None if none is
        due."""
        rows = self.claim_due(1)
        return rows[0] if rows else None

    def claim_due(self, limit: int) -> list[OutboxRow]:
        """Mark the claimable rows due longest, at most `limit`, `sending` and return them in
        the order they fell due; none is due before its time. One transaction for them all:
        a write transaction of its own was most of a claim's cost. Fenced, and with the lease
        to last one renewal period more: none is claimed when the lease is about to run out
        (its renewal is late), so that the sends it starts reach the vendor well before a
        standby can take over and ask about them."""
        s = self._schema
        now = time.time()
        margin = 0.0 if self._ha is None else self._ha.lease_renew
        claimed: list[tuple[str, int, str, str | None, str | None]] = []
        with self._write(fenced=True) as lasts:
            if lasts < margin:
                return []
            due = self._db.execute(
                f"SELECT rowid, {s.status}, vendor, {s.asked} FROM {s.sends}"
                f" WHERE {s.status} IN {_CLAIMABLE} AND {s.due} <= ?"
                f" ORDER BY {s.due} LIMIT ?",
                (now, limit),
            ).fetchall()
            for rowid, status, vendor, asked in due:
                reminder_id, attempts = self._db.execute(
                    f"UPDATE {s.sends} SET {s.status} = 'sending',"
                    f" {s.attempts} = {s.attempts} + 1, {s.updated} = ?"
                    f" WHERE rowid = ? RETURNING reminder_id, {s.attempts}",
                    (now, rowid),
                ).fetchone()
                (record,) = self._db.execute(
                    f"SELECT record FROM {s.records} WHERE reminder_id = ?", (reminder_id,)
                ).fetchone()
                claimed.append((record, int(attempts), status, vendor, asked))
        return [
            OutboxRow(
                ReminderRecord.from_json(record),
                attempts,
                Doubt(str(vendor), Reminder.from_json(asked))
                if status == "in_doubt" and vendor is not None and asked is not None
                else None,
            )
            for record, attempts, status, vendor, asked in claimed
        ]

    def next_due(self) -> float | None:
        """When the earliest claimable row falls due (epoch seconds), None if none is pending."""
        s = self._schema
        row = self._db.execute(
            f"SELECT MIN({s.due}) FROM {s.sends} WHERE {s.status} IN {_CLAIMABLE}"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sent(self, reminder_id: str, vendor: str, message_id: str) -> None:
        s = self._schema
        self._update(
            reminder_id,
            f"{s.status} = 'sent', vendor = ?, {s.message_id} = ?, {s.error} = NULL",
            vendor,
            message_id,
        )

    def mark_failed(self, reminder_id: str, error: str) -> None:
        s = self._schema
        self._update(reminder_id, f"{s.status} = 'failed', {s.error} = ?", error)

    def mark_suppressed(self, reminder_id: str) -> None:
        self._update(reminder_id, f"{self._schema.status} = 'suppressed'")

    def mark_cancelled(self, reminder_id: str) -> None:
        self._update(reminder_id, f"{self._schema.status} = 'cancelled'")

    def mark_unknown(self, reminder_id: str) -> None:
        """The source has no such reminder: a record only the replica made up."""
        self._update(reminder_id, f"{self._schema.status} = 'unknown'")

    def retry_later(self, reminder_id: str, delay: float, error: str) -> None:
        self._due_again(reminder_id, "pending", delay, error)

    def in_doubt(self, reminder_id: str, delay: float, error: str) -> None:
        """The answer of the vendor last tried (`mark_trying`) was lost and it cannot be asked
        about it now: ask it again after `delay`, before trying anything else."""
        self._due_again(reminder_id, "in_doubt", delay, error)

    def _due_again(self, reminder_id: str, status: str, delay: float, error: str) -> None:
        s = self._schema
        self._update(
            reminder_id,
            f"{s.status} = ?, {s.due} = ?, {s.error} = ?",
            status,
            time.time() + delay,
            error,
        )

    # Falling back to the other channels ----------------------------------------------------

    def fallback(self, reminder_id: str) -> Fallback | None:
        """The channel the reminder fell back to, None while it is on SMS."""
        row = self._db.execute(
            "SELECT channel, tries FROM fallback WHERE reminder_id = ?", (reminder_id,)
        ).fetchone()
        return None if row is None else Fallback(str(row[0]), int(row[1]))

    def fall_back(self, reminder_id: str, channel: str, reason: str) -> None:
        """Move the reminder on to `channel`: the one it was on is done with for good."""
        with self._write(fenced=True):
            self._db.execute(
                "INSERT INTO fallback (reminder_id, channel, reason) VALUES (?, ?, ?)"
                " ON CONFLICT (reminder_id) DO UPDATE SET"
                " channel = excluded.channel, tries = 0, reason = excluded.reason",
                (reminder_id, channel, reason),
            )

    def back_to_sms(self, reminder_id: str, delay: float, error: str) -> None:
        """The reminder fell back, but no other channel reaches its borrower: on SMS again,
        due again later."""
        s = self._schema
        with self._write(fenced=True):
            self._db.execute("DELETE FROM fallback WHERE reminder_id = ?", (reminder_id,))
            self._db.execute(
                f"UPDATE {s.sends} SET {s.status} = 'pending', {s.due} = ?, {s.error} = ?,"
                f" {s.updated} = ? WHERE reminder_id = ?",
                (time.time() + delay, error, time.time(), reminder_id),
            )

    def channel_failed(self, reminder_id: str, delay: float, error: str) -> None:
        """A temporary failure on the reminder's fallback channel: count it, due again later."""
        s = self._schema
        with self._write(fenced=True):
            self._db.execute(
                "UPDATE fallback SET tries = tries + 1 WHERE reminder_id = ?", (reminder_id,)
            )
            self._db.execute(
                f"UPDATE {s.sends} SET {s.status} = 'pending', {s.due} = ?, {s.error} = ?,"
                f" {s.updated} = ? WHERE reminder_id = ?",
                (time.time() + delay, error, time.time(), reminder_id),
            )

    def filtered(
        self, message_id: str, channel: str | None, reason: str
    ) -> tuple[str, str] | None:
        """A message a vendor took but the carrier filtered: its reminder, sent by SMS, moves on
        to `channel` (with one) and is due now. Returns its id and the vendor, None if no such
        row was sent by SMS.

        Not fenced: like a delivery report it is a fact, and it sends nothing itself."""
        s = self._schema
        with self._write():
            row = self._db.execute(
                f"SELECT reminder_id, vendor FROM {s.sends} WHERE {s.message_id} = ?"
                f" AND {s.status} = 'sent'"
                " AND reminder_id NOT IN (SELECT reminder_id FROM fallback)",
                (message_id,),
            ).fetchone()
            if row is None:
                return None
            reminder_id, vendor = str(row[0]), str(row[1])
            if channel is None:
                return reminder_id, vendor
            self._db.execute(
                "INSERT INTO fallback (reminder_id, channel, reason) VALUES (?, ?, ?)",
                (reminder_id, channel, reason),
            )
            self._db.execute(
                f"UPDATE {s.sends} SET {s.status} = 'pending', {s.due} = 0, {s.error} = ?,"
                f" {s.updated} = ? WHERE reminder_id = ?",
                (reason, time.time(), reminder_id),
            )
        return reminder_id, vendor

    # Replies and reports --------------------------------------------------------------------

    def opt_out(self, phone: str, vendor: str) -> bool:
        """Record a STOP from `phone` (E.164) that came through `vendor`; False if already had."""
        with self._write():
            return (
                self._db.execute(
                    f"INSERT OR IGNORE INTO {self._schema.stop_list} (phone, vendor, created_at)"
                    " VALUES (?, ?, ?)",
                    (phone, vendor, time.time()),
                ).rowcount
                == 1
            )

    def is_opted_out(self, phone: str) -> bool:
        row = self._db.execute(
            f"SELECT 1 FROM {self._schema.stop_list} WHERE phone = ?", (phone,)
        ).fetchone()
        return row is not None

    def record_delivery(
        self, status: str, message_id: str | None = None, ref: str | None = None
    ) -> int:
        """Store a delivery report, matched by vendor message id or by ref; returns rows hit.

        Matching by ref too catches reports that overtake our own record of the send.
        """
        s = self._schema
        placeholders = ", ".join("?" for _ in _FINAL_DELIVERY)
        with self._write():
            return self._db.execute(
                f"UPDATE {s.sends} SET delivery = ?, {s.updated} = ?"
                f" WHERE ({s.message_id} = ? OR reminder_id IN"
                f"   (SELECT reminder_id FROM {s.records} WHERE ref = ?))"
                f" AND (delivery IS NULL OR delivery NOT IN ({placeholders}))",
                (status, time.time(), message_id, ref, *_FINAL_DELIVERY),
            ).rowcount

    def counts(self) -> dict[str, int]:
        s = self._schema
        rows = self._db.execute(f"SELECT {s.status}, COUNT(*) FROM {s.sends} GROUP BY 1")
        return {str(status): int(count) for status, count in rows}

    # Transactions ---------------------------------------------------------------------------

    def _update(self, reminder_id: str, assignments: str, *values: object) -> None:
        s = self._schema
        with self._write(fenced=True):
            self._db.execute(
                f"UPDATE {s.sends} SET {assignments}, {s.updated} = ? WHERE reminder_id = ?",
                (*values, time.time(), reminder_id),
            )

    @contextmanager
    def _write(self, *, fenced: bool = False) -> Iterator[float]:
        """One write transaction holding the write lock from its start; yields how long the
        lease lasts (infinite unfenced or without active/standby). Fenced, it raises
        LeaseLost, writing nothing, unless this instance holds an unexpired lease."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            lasts = self._lease_lasts() if fenced else float("inf")
            yield lasts
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _lease_lasts(self) -> float:
        if self._ha is None:
            return float("inf")
        held = self._held
        row = (
            None
            if held is None
            else self._db.execute(
                "SELECT expires_at FROM lease WHERE id = 0 AND holder = ? AND term = ?",
                (held.holder, held.term),
            ).fetchone()
        )
        lasts = -1.0 if row is None else float(row[0]) - time.time()
        if lasts <= 0:
            self._held = None
            raise LeaseLost("this instance no longer holds the outbox's lease")
        return lasts
