"""Migrates an outbox from schema 1 to schema 2 in one transaction, keeping every reminder, its
send state, the STOP list and the feed's cursor: `python -m examples.reminder_service.migrate
OUTBOX_PATH`, with every instance stopped. `DEFECT=drops-in-flight` is the broken migration."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from .outbox import UNSENT
from .reminder import ReminderRecord
from .schema import SCHEMA_1, SCHEMA_2, UnknownSchema, create, schema_of


class MigrationDefect(StrEnum):
    """The deliberately broken migration, to prove a rehearsal catches it."""

    DROPS_IN_FLIGHT = "drops-in-flight"


class MigrationError(Exception):
    """An outbox this migration refuses (its message is the one line to print)."""


@dataclass(frozen=True)
class Migrated:
    """What a migration carried over to schema 2."""

    reminders: int
    in_flight: int
    stop_list: int
    cursor: int

    def summary(self, path: str) -> str:
        return (
            f"migrated {self.reminders} reminders ({self.in_flight} in flight), "
            f"{self.stop_list} STOP replies and feed cursor {self.cursor} of outbox {path} "
            f"from schema 1 to schema 2"
        )


def migrate(path: str, defect: MigrationDefect | None = None) -> Migrated:
    """Migrate the schema 1 outbox at `path` to schema 2, all or nothing; MigrationError if it
    is no schema 1 outbox (absent, empty, already migrated, or unknown)."""
    if not Path(path).is_file():
        raise MigrationError(f"no outbox at {path}")
    # mode=rw: a missing file is an error, never a new empty outbox.
    db = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            migrated = _migrate(db, path, defect)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise MigrationError(f"cannot migrate outbox {path}: {exc}") from None
    finally:
        db.close()
    return migrated


def _migrate(db: sqlite3.Connection, path: str, defect: MigrationDefect | None) -> Migrated:
    try:
        found = schema_of(db)
    except UnknownSchema as exc:
        raise MigrationError(f"outbox {path} is no outbox schema known ({exc})") from None
    if found is None:
        raise MigrationError(f"outbox {path} is empty: nothing to migrate")
    if found != SCHEMA_1.version:
        raise MigrationError(f"outbox {path} is already schema {found}: nothing to migrate")
    old, new = SCHEMA_1, SCHEMA_2
    create(db, new)
    kept = 0
    in_flight = 0
    rows = db.execute(
        f"SELECT reminder_id, ref, version, record, {old.status}, {old.attempts}, {old.due},"
        f" vendor, {old.asked}, {old.message_id}, {old.error}, delivery, {old.updated}"
        f" FROM {old.sends} ORDER BY rowid"
    ).fetchall()
    for row in rows:
        reminder_id, ref, version, record, status = row[:5]
        if status in UNSENT:
            if defect is MigrationDefect.DROPS_IN_FLIGHT:
                continue  # the defect: only what was settled is carried over, silently
            in_flight += 1
        try:
            remind_at = ReminderRecord.from_json(record).remind_at.timestamp()
        except (ValueError, KeyError, TypeError) as exc:
            raise MigrationError(
                f"outbox {path}: reminder {reminder_id} has an unreadable record ({exc})"
            ) from None
        db.execute(
            f"INSERT INTO {new.records} (reminder_id, ref, version, record, remind_at, stored_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (reminder_id, ref, version, record, remind_at, row[12]),
        )
        db.execute(
            f"INSERT INTO {new.sends} (reminder_id, {new.status}, {new.attempts}, {new.due},"
            f" vendor, {new.asked}, {new.message_id}, {new.error}, delivery, {new.updated})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (reminder_id, *row[4:]),
        )
        kept += 1
    stop_list = db.execute(
        f"INSERT INTO {new.stop_list} (phone, vendor, created_at)"
        f" SELECT phone, vendor, created_at FROM {old.stop_list}"
    ).rowcount
    cursor_row = db.execute(f"SELECT value FROM {old.cursor} WHERE id = 0").fetchone()
    cursor = 0 if cursor_row is None else int(cursor_row[0])
    if cursor_row is not None:
        db.execute(f"INSERT INTO {new.cursor} (id, value) VALUES (0, ?)", (cursor,))
    for table in (old.sends, old.stop_list, old.cursor):
        db.execute(f"DROP TABLE {table}")
    return Migrated(kept, in_flight, stop_list, cursor)


def main(argv: Sequence[str] = sys.argv[1:], environ: Mapping[str, str] = os.environ) -> int:
    if len(argv) != 1:
        print("usage: python -m examples.reminder_service.migrate OUTBOX_PATH", file=sys.stderr)
        return 2
    raw = environ.get("DEFECT", "").strip()
    try:
        defect = MigrationDefect(raw) if raw else None
    except ValueError:
        known = ", ".join(member.value for member in MigrationDefect)
        print(f"migrate: DEFECT must be unset or one of {known}, got {raw!r}", file=sys.stderr)
        return 2
    try:
        migrated = migrate(argv[0], defect)
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 2
    print(migrated.summary(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
