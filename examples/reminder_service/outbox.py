"""The SQLite outbox: the newest version of each reminder read from the ledger's feed, its send
state, borrowers' STOP replies, and the feed's cursor."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .reminder import Reminder, ReminderRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    reminder_id     TEXT PRIMARY KEY,
    ref             TEXT NOT NULL,
    version         INTEGER NOT NULL,
    record          TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    attempt         TEXT,
    vendor          TEXT,
    message_id      TEXT,
    error           TEXT,
    delivery        TEXT,
    updated_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_message_id ON outbox (message_id);
CREATE INDEX IF NOT EXISTS outbox_ref ON outbox (ref);
CREATE TABLE IF NOT EXISTS opted_out (
    phone      TEXT PRIMARY KEY,
    vendor     TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_cursor (
    id    INTEGER PRIMARY KEY CHECK (id = 0),
    value INTEGER NOT NULL
);
"""

# Only a newer version replaces a row's record, whatever state the row is in: a re-served or
# older entry is old news, and a row already sent stays sent. A row never tried yet moves
# with its remind_at; one waiting out a retry keeps its backoff.
_UPSERT = """
INSERT INTO outbox (reminder_id, ref, version, record, next_attempt_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (reminder_id) DO UPDATE SET
    ref = excluded.ref,
    version = excluded.version,
    record = excluded.record,
    next_attempt_at = CASE WHEN attempts = 0 THEN excluded.next_attempt_at
                           ELSE next_attempt_at END,
    updated_at = excluded.updated_at
WHERE excluded.version > outbox.version
"""

# A late "sent" callback must not overwrite a final delivery state.
_FINAL_DELIVERY = ("delivered", "undelivered", "failed")


@dataclass(frozen=True)
class OutboxRow:
    """A claimed row: the highest version of the feed's record, and how often it was tried."""

    record: ReminderRecord
    attempts: int


@dataclass(frozen=True)
class InterruptedSend:
    """A row a previous process left mid-send: the message it handed to `vendor`, if it got
    that far."""

    reminder_id: str
    vendor: str | None
    message: Reminder | None


class Outbox:
    """Single-connection store used from the event loop thread only.

    Every call is a short local transaction, so it runs inline on the event loop rather than
    in a thread; with no await inside a call, worker tasks never interleave within one.
    """

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a process crash; only an OS crash can lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def cursor(self) -> int:
        row = self._db.execute("SELECT value FROM ledger_cursor WHERE id = 0").fetchone()
        return int(row[0]) if row else 0

    def add(self, records: Sequence[ReminderRecord], cursor: int) -> int:
        """Store a feed page and its cursor atomically; returns how many rows it created or
        moved to a newer version."""
        now = time.time()
        with self._db:
            before = self._db.total_changes
            self._db.executemany(
                _UPSERT,
                [
                    (
                        r.reminder_id,
                        r.ref,
                        r.version,
                        r.to_json(),
                        r.remind_at.timestamp(),
                        now,
                    )
                    for r in records
                ],
            )
            stored = self._db.total_changes - before
            self._db.execute(
                "INSERT INTO ledger_cursor (id, value) VALUES (0, ?)"
                " ON CONFLICT (id) DO UPDATE SET value = excluded.value",
                (cursor,),
            )
        return stored

    def interrupted(self) -> list[InterruptedSend]:
        """The rows a previous process left in `sending`: it may have died after asking a
        vendor but before recording the answer, so the vendor may have sent them."""
        rows = self._db.execute(
            "SELECT reminder_id, vendor, attempt FROM outbox WHERE status = 'sending'"
            " ORDER BY rowid"
        )
        return [
            InterruptedSend(
                str(reminder_id), vendor, None if attempt is None else Reminder.from_json(attempt)
            )
            for reminder_id, vendor, attempt in rows
        ]

    def requeue(self, reminder_id: str) -> None:
        self._update(reminder_id, "status = 'pending', next_attempt_at = 0")

    def mark_trying(self, message: Reminder, vendor: str) -> None:
        """Note what is being asked of which vendor, so that a restart knows whom to ask
        about which message."""
        self._update(message.reminder_id, "vendor = ?, attempt = ?", vendor, message.to_json())

    def claim(self) -> OutboxRow | None:
        """Mark the pending row due longest `sending` and return it; none is due before its
        time."""
        now = time.time()
        with self._db:
            row = self._db.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ?"
                " WHERE rowid = (SELECT rowid FROM outbox"
                "   WHERE status = 'pending' AND next_attempt_at <= ?"
                "   ORDER BY next_attempt_at LIMIT 1)"
                " RETURNING record, attempts",
                (now, now),
            ).fetchone()
        if row is None:
            return None
        return OutboxRow(record=ReminderRecord.from_json(row[0]), attempts=int(row[1]))

    def next_due(self) -> float | None:
        """When the earliest pending row falls due (epoch seconds), None if none is pending."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sent(self, reminder_id: str, vendor: str, message_id: str) -> None:
        self._update(
            reminder_id,
            "status = 'sent', vendor = ?, message_id = ?, error = NULL",
            vendor,
            message_id,
        )

    def mark_failed(self, reminder_id: str, error: str) -> None:
        self._update(reminder_id, "status = 'failed', error = ?", error)

    def mark_suppressed(self, reminder_id: str) -> None:
        self._update(reminder_id, "status = 'suppressed'")

    def mark_cancelled(self, reminder_id: str) -> None:
        self._update(reminder_id, "status = 'cancelled'")

    def mark_unknown(self, reminder_id: str) -> None:
        """The source has no such reminder: a record only the replica made up."""
        self._update(reminder_id, "status = 'unknown'")

    def opt_out(self, phone: str, vendor: str) -> bool:
        """Record a STOP from `phone` (E.164) that came through `vendor`; False if already had."""
        with self._db:
            return (
                self._db.execute(
                    "INSERT OR IGNORE INTO opted_out (phone, vendor, created_at) VALUES (?, ?, ?)",
                    (phone, vendor, time.time()),
                ).rowcount
                == 1
            )

    def is_opted_out(self, phone: str) -> bool:
        row = self._db.execute("SELECT 1 FROM opted_out WHERE phone = ?", (phone,)).fetchone()
        return row is not None

    def retry_later(self, reminder_id: str, delay: float, error: str) -> None:
        self._update(
            reminder_id,
            "status = 'pending', next_attempt_at = ?, error = ?",
            time.time() + delay,
            error,
        )

    def record_delivery(
        self, status: str, message_id: str | None = None, ref: str | None = None
    ) -> int:
        """Store a delivery report, matched by vendor message id or by ref; returns rows hit.

        Matching by ref too catches reports that overtake our own record of the send.
        """
        placeholders = ", ".join("?" for _ in _FINAL_DELIVERY)
        with self._db:
            return self._db.execute(
                "UPDATE outbox SET delivery = ?, updated_at = ?"
                " WHERE (message_id = ? OR ref = ?)"
                f" AND (delivery IS NULL OR delivery NOT IN ({placeholders}))",
                (status, time.time(), message_id, ref, *_FINAL_DELIVERY),
            ).rowcount

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {str(status): int(count) for status, count in rows}

    def _update(self, reminder_id: str, assignments: str, *values: object) -> None:
        with self._db:
            self._db.execute(
                f"UPDATE outbox SET {assignments}, updated_at = ? WHERE reminder_id = ?",
                (*values, time.time(), reminder_id),
            )
