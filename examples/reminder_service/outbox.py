"""The SQLite outbox: each reminder pulled from the ledger, its send state, and the cursor."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .reminder import Reminder

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    reminder_id     TEXT PRIMARY KEY,
    ref             TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    vendor          TEXT,
    message_id      TEXT,
    error           TEXT,
    delivery        TEXT,
    updated_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status);
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

# A late "sent" callback must not overwrite a final delivery state.
_FINAL_DELIVERY = ("delivered", "undelivered", "failed")


@dataclass(frozen=True)
class OutboxRow:
    reminder: Reminder
    attempts: int
    vendor: str | None = None  # the vendor last asked to send it


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

    def add(self, reminders: Sequence[Reminder], cursor: int) -> int:
        """Store a ledger page and its cursor atomically; returns how many rows are new."""
        now = time.time()
        with self._db:
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox (reminder_id, ref, payload, updated_at)"
                " VALUES (?, ?, ?, ?)",
                [(r.reminder_id, r.ref, r.to_json(), now) for r in reminders],
            )
            added = self._db.total_changes - before
            self._db.execute(
                "INSERT INTO ledger_cursor (id, value) VALUES (0, ?)"
                " ON CONFLICT (id) DO UPDATE SET value = excluded.value",
                (cursor,),
            )
        return added

    def interrupted(self) -> list[OutboxRow]:
        """The rows a previous process left in `sending`: it may have died after asking a
        vendor but before recording the answer, so the vendor may have sent them."""
        rows = self._db.execute(
            "SELECT payload, attempts, vendor FROM outbox WHERE status = 'sending' ORDER BY rowid"
        )
        return [
            OutboxRow(Reminder.from_json(payload), int(attempts), vendor)
            for payload, attempts, vendor in rows
        ]

    def requeue(self, reminder_id: str) -> None:
        self._update(reminder_id, "status = 'pending', next_attempt_at = 0")

    def mark_trying(self, reminder_id: str, vendor: str) -> None:
        """Note which vendor is being asked, so that a restart knows whom to ask about it."""
        self._update(reminder_id, "vendor = ?", vendor)

    def claim(self) -> OutboxRow | None:
        """Mark the oldest due pending row `sending` and return it."""
        now = time.time()
        with self._db:
            row = self._db.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ?"
                " WHERE rowid = (SELECT rowid FROM outbox"
                "   WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY rowid LIMIT 1)"
                " RETURNING payload, attempts",
                (now, now),
            ).fetchone()
        if row is None:
            return None
        return OutboxRow(reminder=Reminder.from_json(row[0]), attempts=int(row[1]))

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
