"""The outbox's two schemas: what each version's tables and send-state columns are called, how a
file's schema is told, and the DDL that creates each."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

# Shared by both schemas: the active/standby lease (one row) is not part of the outbox's data.
_LEASE = """
CREATE TABLE IF NOT EXISTS lease (
    id         INTEGER PRIMARY KEY CHECK (id = 0),
    holder     TEXT NOT NULL,
    term       INTEGER NOT NULL,
    expires_at REAL NOT NULL
)
"""

# Shared by both schemas too: the channel a reminder has fallen back to after SMS (no row: it is
# still on SMS), with the failed tries on it and why the channel before was given up.
_FALLBACK = """
CREATE TABLE IF NOT EXISTS fallback (
    reminder_id TEXT PRIMARY KEY,
    channel     TEXT NOT NULL,
    tries       INTEGER NOT NULL DEFAULT 0,
    reason      TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Schema:
    """One schema version: its DDL, its feed upsert, and the names of its tables and of the
    send-state columns (the code is the same for both; only these names differ)."""

    version: int
    ddl: tuple[str, ...]
    # Run in order with the named parameters id, ref, version, record, remind_at, now; the
    # first statement's changes count as rows stored.
    upsert: tuple[str, ...]
    records: str  # reminder_id, ref, version, record
    sends: str  # reminder_id and the columns below
    cursor: str  # id = 0, value
    stop_list: str  # phone, vendor, created_at
    status: str
    attempts: str
    due: str
    asked: str  # the message asked of `vendor`, as JSON
    message_id: str
    error: str
    updated: str


# Only a newer version replaces a row's record, whatever state the row is in: a re-served or
# older entry is old news, and a row already sent stays sent. A row never tried yet moves
# with its remind_at; one waiting out a retry keeps its backoff.
SCHEMA_1 = Schema(
    version=1,
    ddl=(
        """
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
        )
        """,
        "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at)",
        "CREATE INDEX IF NOT EXISTS outbox_message_id ON outbox (message_id)",
        "CREATE INDEX IF NOT EXISTS outbox_ref ON outbox (ref)",
        """
        CREATE TABLE IF NOT EXISTS opted_out (
            phone      TEXT PRIMARY KEY,
            vendor     TEXT NOT NULL,
            created_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS ledger_cursor (
            id    INTEGER PRIMARY KEY CHECK (id = 0),
            value INTEGER NOT NULL
        )
        """,
        _LEASE,
        _FALLBACK,
    ),
    upsert=(
        """
        INSERT INTO outbox (reminder_id, ref, version, record, next_attempt_at, updated_at)
        VALUES (:id, :ref, :version, :record, :remind_at, :now)
        ON CONFLICT (reminder_id) DO UPDATE SET
            ref = excluded.ref,
            version = excluded.version,
            record = excluded.record,
            next_attempt_at = CASE WHEN attempts = 0 THEN excluded.next_attempt_at
                                   ELSE next_attempt_at END,
            updated_at = excluded.updated_at
        WHERE excluded.version > outbox.version
        """,
    ),
    records="outbox",
    sends="outbox",
    cursor="ledger_cursor",
    stop_list="opted_out",
    status="status",
    attempts="attempts",
    due="next_attempt_at",
    asked="attempt",
    message_id="message_id",
    error="error",
    updated="updated_at",
)

# Version 2 keeps what the ledger said apart from what the service did about it: `reminders`
# holds each reminder's newest record (with remind_at as a column), `sends` its send state,
# renamed to say what each column is. The STOP list and the cursor are renamed likewise.
SCHEMA_2 = Schema(
    version=2,
    ddl=(
        """
        CREATE TABLE IF NOT EXISTS reminders (
            reminder_id TEXT PRIMARY KEY,
            ref         TEXT NOT NULL,
            version     INTEGER NOT NULL,
            record      TEXT NOT NULL,
            remind_at   REAL NOT NULL,
            stored_at   REAL NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS reminders_ref ON reminders (ref)",
        """
        CREATE TABLE IF NOT EXISTS sends (
            reminder_id       TEXT PRIMARY KEY REFERENCES reminders (reminder_id),
            state             TEXT NOT NULL DEFAULT 'pending',
            tries             INTEGER NOT NULL DEFAULT 0,
            due_at            REAL NOT NULL,
            vendor            TEXT,
            asked             TEXT,
            vendor_message_id TEXT,
            last_error        TEXT,
            delivery          TEXT,
            changed_at        REAL NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS sends_due ON sends (state, due_at)",
        "CREATE INDEX IF NOT EXISTS sends_message_id ON sends (vendor_message_id)",
        """
        CREATE TABLE IF NOT EXISTS stop_list (
            phone      TEXT PRIMARY KEY,
            vendor     TEXT NOT NULL,
            created_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS feed_cursor (
            id    INTEGER PRIMARY KEY CHECK (id = 0),
            value INTEGER NOT NULL
        )
        """,
        _LEASE,
        _FALLBACK,
    ),
    upsert=(
        """
        INSERT INTO reminders (reminder_id, ref, version, record, remind_at, stored_at)
        VALUES (:id, :ref, :version, :record, :remind_at, :now)
        ON CONFLICT (reminder_id) DO UPDATE SET
            ref = excluded.ref,
            version = excluded.version,
            record = excluded.record,
            remind_at = excluded.remind_at,
            stored_at = excluded.stored_at
        WHERE excluded.version > reminders.version
        """,
        # Due at the stored record's remind_at: an older entry re-served leaves it as it is.
        """
        INSERT INTO sends (reminder_id, due_at, changed_at)
        SELECT reminder_id, remind_at, :now FROM reminders WHERE reminder_id = :id
        ON CONFLICT (reminder_id) DO UPDATE SET
            due_at = excluded.due_at, changed_at = excluded.changed_at
        WHERE sends.tries = 0 AND sends.due_at != excluded.due_at
        """,
    ),
    records="reminders",
    sends="sends",
    cursor="feed_cursor",
    stop_list="stop_list",
    status="state",
    attempts="tries",
    due="due_at",
    asked="asked",
    message_id="vendor_message_id",
    error="last_error",
    updated="changed_at",
)

SCHEMAS = {schema.version: schema for schema in (SCHEMA_1, SCHEMA_2)}
"""Each notifier version's schema, by version: version N keeps its outbox in schema N."""


class UnknownSchema(Exception):
    """A SQLite file whose tables are no outbox schema we know."""


def schema_of(db: sqlite3.Connection) -> int | None:
    """The file's schema version, None for an empty file; UnknownSchema for anything else.

    Schema 2 is stamped in `user_version`; schema 1 was not (outboxes made before version 2
    exist), so it is told by its `outbox` table.
    """
    (stamped,) = db.execute("PRAGMA user_version").fetchone()
    tables = {
        str(name)
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if stamped in SCHEMAS:
        return int(stamped)
    if stamped == 0 and not tables:
        return None
    if stamped == 0 and SCHEMA_1.records in tables:
        return 1
    listed = ", ".join(sorted(tables)) or "none"
    raise UnknownSchema(f"user_version {stamped}, tables {listed}")


def create(db: sqlite3.Connection, schema: Schema) -> None:
    """Create `schema`'s tables and stamp its version, inside the caller's transaction."""
    for statement in schema.ddl:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {schema.version}")
