"""The outbox's schema 1 → 2 migration and its broken variant, on real SQLite files: every row,
its send state, the cursor and the STOP list carried over in one transaction, and each version
refusing the other's outbox."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.reminder_service.outbox import Doubt, Outbox, OutboxError
from examples.reminder_service.reminder import ReminderRecord
from tests.examples.notifierkit import ROOT, World, async_test, eventually, outbox_rows, record

MIGRATE = [sys.executable, "-m", "examples.reminder_service.migrate"]

# Due a minute ago, one a second apart in their order; the last not for an hour.
ENTRIES = {
    n: ReminderRecord.from_ledger(record(n, lead=-60.0 + n if n < 8 else 3600.0))
    for n in range(1, 9)
}


def version_1_outbox(path: Path) -> dict[str, str]:
    """A schema 1 outbox with a row in every state (through the service's own Outbox), two
    STOP replies and the feed's cursor at 42; returns each row's state."""
    outbox = Outbox(str(path), 1)
    try:
        outbox.add(list(ENTRIES.values()), 42)
        for n in range(1, 8):  # claimed in due order: rem-000001 first
            row = outbox.claim()
            assert row is not None and row.record.reminder_id == f"rem-{n:06d}"
        outbox.mark_trying(ENTRIES[1].message(), "twilio")
        outbox.mark_sent("rem-000001", "twilio", "SM1")
        outbox.record_delivery("delivered", message_id="SM1")
        outbox.retry_later("rem-000002", 5.0, "twilio: HTTP 500")  # pending, tried once
        outbox.mark_trying(ENTRIES[3].message(), "aliyun")  # rem-000003 left in `sending`
        outbox.requeue("rem-000004")
        outbox.mark_cancelled("rem-000005")
        outbox.mark_suppressed("rem-000006")
        outbox.mark_failed("rem-000007", "twilio: HTTP 400")
        assert outbox.opt_out("+8613900000006", "twilio")
        assert outbox.opt_out("+8613900000009", "aliyun")
    finally:
        outbox.close()
    return {rid: row["status"] for rid, row in outbox_rows(path, "1").items()}


def migrate(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MIGRATE, str(path)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def schema_tables(path: Path) -> tuple[int, set[str]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        (stamped,) = db.execute("PRAGMA user_version").fetchone()
        tables = {
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    return int(stamped), tables


def test_the_migration_keeps_every_row_its_send_state_the_cursor_and_the_stop_list(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    states = version_1_outbox(path)
    assert states == {
        "rem-000001": "sent",
        "rem-000002": "pending",
        "rem-000003": "sending",
        "rem-000004": "pending",
        "rem-000005": "cancelled",
        "rem-000006": "suppressed",
        "rem-000007": "failed",
        "rem-000008": "pending",
    }
    before = outbox_rows(path, "1")

    done = migrate(path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        f"migrated 8 reminders (4 in flight), 2 STOP replies and feed cursor 42 of outbox {path}"
        " from schema 1 to schema 2"
    ]
    assert schema_tables(path) == (
        2,
        {"reminders", "sends", "stop_list", "feed_cursor", "lease", "fallback"},
    )
    after = outbox_rows(path, "2")
    # Every column of every row, the timestamps included, as version 1 kept it.
    assert after == {
        rid: {key: value for key, value in row.items() if key != "updated_at"}
        for rid, row in before.items()
    }

    outbox = Outbox(str(path), 2)
    try:
        assert outbox.cursor() == 42
        assert outbox.is_opted_out("+8613900000006") and outbox.is_opted_out("+8613900000009")
        [interrupted] = outbox.interrupted()
        assert (interrupted.reminder_id, interrupted.vendor) == ("rem-000003", "aliyun")
        assert interrupted.message == ENTRIES[3].message()
        # The requeued row is due at once, the retried one after its backoff, the last in an hour.
        claimed = outbox.claim()
        assert claimed is not None and claimed.record == ENTRIES[4]
        assert claimed.attempts == 2
        assert outbox.claim() is None
        assert outbox.record_delivery("undelivered", ref="REF00007") == 1
        assert outbox.counts() == {
            "sent": 1,
            "pending": 2,
            "sending": 2,
            "cancelled": 1,
            "suppressed": 1,
            "failed": 1,
        }
    finally:
        outbox.close()


def test_a_send_in_doubt_is_carried_over_asked_about_on_restart_and_claimed_with_its_message(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(str(path), 1)
    try:
        outbox.add([ENTRIES[1], ENTRIES[2]], 2)
        row = outbox.claim()
        assert row is not None and row.doubt is None
        outbox.mark_trying(ENTRIES[1].message(), "twilio")
        outbox.in_doubt("rem-000001", 0.0, "twilio: timed out; cannot connect")
    finally:
        outbox.close()
    done = migrate(path)
    assert "migrated 2 reminders (2 in flight)" in done.stdout, done.stderr

    outbox = Outbox(str(path), 2)
    try:
        [interrupted] = outbox.interrupted()  # a restart asks Twilio about it first
        assert (interrupted.reminder_id, interrupted.vendor) == ("rem-000001", "twilio")
        first, second = outbox.claim(), outbox.claim()
        assert first is not None and (first.record, first.doubt) == (ENTRIES[2], None)
        assert second is not None and second.record == ENTRIES[1] and second.attempts == 2
        assert second.doubt == Doubt("twilio", ENTRIES[1].message())
        outbox.in_doubt("rem-000001", 60.0, "twilio: cannot connect")  # not due before then
        assert outbox.claim() is None
        due = outbox.next_due()
        assert due is not None and due > time.time() + 50.0
    finally:
        outbox.close()


def test_the_broken_migration_drops_what_was_in_flight_and_keeps_the_cursor(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    states = version_1_outbox(path)
    done = migrate(path, DEFECT="drops-in-flight")
    # It says it went well, as the broken migration a rehearsal must catch would.
    assert done.returncode == 0
    assert done.stdout.startswith(
        "migrated 4 reminders (0 in flight), 2 STOP replies and feed cursor 42"
    )
    after = outbox_rows(path, "2")
    assert {rid: row["status"] for rid, row in after.items()} == {
        rid: state for rid, state in states.items() if state not in ("pending", "sending")
    }
    outbox = Outbox(str(path), 2)
    try:
        # The cursor is past them: the feed never serves them again, so they are never sent.
        assert outbox.cursor() == 42
        assert outbox.interrupted() == [] and outbox.next_due() is None
    finally:
        outbox.close()


def test_an_outbox_made_before_the_schema_was_stamped_is_schema_1(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    version_1_outbox(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version = 0")  # as every outbox before version 2
    with pytest.raises(OutboxError, match="is schema 1; version 2 needs schema 2"):
        Outbox(str(path), 2)
    assert migrate(path).returncode == 0
    assert schema_tables(path)[0] == 2


@pytest.mark.parametrize("version", [1, 2])
def test_each_version_refuses_the_other_versions_outbox_and_makes_its_own(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "outbox.sqlite3"
    other = 3 - version
    Outbox(str(path), other).close()
    fix = (
        f"run python -m examples.reminder_service.migrate {path}"
        if version == 2
        else "there is no downgrade: restore the copy taken before migrating"
    )
    with pytest.raises(OutboxError) as refused:
        Outbox(str(path), version)
    assert str(refused.value) == (
        f"outbox {path} is schema {other}; version {version} needs schema {version}: {fix}"
    )
    fresh = tmp_path / "fresh.sqlite3"
    Outbox(str(fresh), version).close()
    assert schema_tables(fresh)[0] == version


def test_the_notifier_on_the_other_schema_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    version_1_outbox(path)
    world = World(tmp_path, version="2")
    world.outbox_path = path
    world.urls = {name: "http://127.0.0.1:9" for name in ("ledger", "twilio", "aliyun", "alerts")}
    result = subprocess.run(
        [sys.executable, "-m", "examples.reminder_service"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **world.env(PORT="8080", PUBLIC_URL=world.urls["ledger"])},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"reminder-service: outbox {path} is schema 1; version 2 needs schema 2: "
        f"run python -m examples.reminder_service.migrate {path}"
    ]


def test_the_migration_refuses_what_is_no_schema_1_outbox(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite3"
    migrated = tmp_path / "migrated.sqlite3"
    Outbox(str(migrated), 2).close()
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    empty.touch()
    foreign = tmp_path / "foreign.sqlite3"
    with contextlib.closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    cases = {
        missing: f"migrate: no outbox at {missing}",
        migrated: f"migrate: outbox {migrated} is already schema 2: nothing to migrate",
        empty: f"migrate: outbox {empty} is empty: nothing to migrate",
        foreign: f"migrate: outbox {foreign} is no outbox schema known"
        " (user_version 0, tables accounts)",
        junk: f"migrate: cannot migrate outbox {junk}: file is not a database",
    }
    for path, line in cases.items():
        done = migrate(path)
        assert (done.returncode, done.stdout, done.stderr.splitlines()) == (2, "", [line]), path
    assert not missing.exists(), "a missing outbox is never created"
    assert schema_tables(foreign) == (0, {"accounts"})

    usage = subprocess.run(MIGRATE, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert (usage.returncode, usage.stderr.splitlines()) == (
        2,
        ["usage: python -m examples.reminder_service.migrate OUTBOX_PATH"],
    )
    bad = migrate(migrated, DEFECT="forgetful")
    assert (bad.returncode, bad.stderr.splitlines()) == (
        2,
        ["migrate: DEFECT must be unset or one of drops-in-flight, got 'forgetful'"],
    )


def test_a_migration_that_fails_midway_leaves_schema_1_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    version_1_outbox(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE outbox SET record = '{\"ref\": 1}' WHERE reminder_id = 'rem-000007'")
    before = outbox_rows(path, "1")
    done = migrate(path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"migrate: outbox {path}: reminder rem-000007 has an unreadable record ('remind_at')"
    ]
    assert schema_tables(path)[0] == 1
    assert outbox_rows(path, "1") == before


@pytest.mark.parametrize("defect", ["", "drops-in-flight"])
@async_test
async def test_version_1_migrated_then_version_2_sends_what_was_left(
    tmp_path: Path, defect: str
) -> None:
    async with World(tmp_path, reminders=2) as world:
        first = await world.start()
        await eventually(world.all_sent, "version 1 sent the first two")
        for n in (3, 4):  # in the outbox, due after the cut-over
            world.ledger.schedule(n, lead=2.0)
        await eventually(lambda: world.stored("rem-000004"), "the later two stored")
        assert await first.stop() == 0

        done = migrate(world.outbox_path, DEFECT=defect)
        assert done.returncode == 0, done.stderr
        world.version = "2"
        second = await world.start()
        assert (await second.health())["version"] == 2
        world.ledger.schedule(5)  # after the cut-over
        if defect:
            # The one scheduled after the cut-over is sent; the two waiting in the outbox at the
            # cut-over are gone, and the cursor is past them: they can never be sent.
            await eventually(lambda: world.statuses().get("rem-000005") == "sent", "rem-000005")
            assert sorted(world.twilio.refs()) == ["REF00001", "REF00002", "REF00005"]
            assert set(world.statuses()) == {"rem-000001", "rem-000002", "rem-000005"}
        else:
            await eventually(world.all_sent, "version 2 sent the rest")
            assert sorted(world.twilio.refs()) == [f"REF{n:05d}" for n in range(1, 6)]
        assert await second.stop() == 0
