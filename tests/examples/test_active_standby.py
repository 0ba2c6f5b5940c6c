"""Active/standby: two real notifier processes on one outbox against the fakes; only the lease
holder sends, a standby takes over from a killed or frozen active and loses or repeats nothing,
and a frozen ex-active that wakes up sends nothing more."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from examples.reminder_service import outbox as outbox_module
from examples.reminder_service.leadership import Leadership
from examples.reminder_service.outbox import LeaseLost, Outbox
from examples.reminder_service.reminder import ReminderRecord
from examples.reminder_service.settings import HaConfig
from tests.examples.notifierkit import Service, World, async_test, config_error, eventually, record

# Each instance sends from a number of its own, so that the fakes tell who sent what.
FROM = {"a": "+15005550006", "b": "+15005550007"}


async def start(world: World, name: str, **env: str) -> Service:
    return await world.start(
        HA_MODE="active-standby", INSTANCE_NAME=name, TWILIO_FROM=FROM[name], **env
    )


async def until_role(service: Service, role: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await service.health())["role"] != role:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{service.url} not {role} after {timeout}s")
        await asyncio.sleep(0.05)


def senders(world: World) -> dict[str, list[str]]:
    """Each instance's name: the refs whose sends it asked Twilio for, sorted (concurrent sends
    arrive in no set order)."""
    by_from = {number: name for name, number in FROM.items()}
    sent: dict[str, list[str]] = {name: [] for name in FROM}
    for request in world.twilio.requests:
        sent[by_from[request["From"]]].append(request["ref"])
    return {name: sorted(refs) for name, refs in sent.items()}


@pytest.mark.parametrize("version", ["1", "2"])
@async_test
async def test_the_standby_takes_over_from_a_killed_active_and_sends_each_once(
    tmp_path: Path, version: str
) -> None:
    async with World(tmp_path, reminders=3, version=version) as world:
        # The third send reaches Twilio, and the active dies before Twilio's answer: its vendor
        # timeout outlasts the standby's start (slow on a loaded machine), or it would have
        # timed out and found the message itself before it is killed.
        world.twilio.once = {"REF00003": "swallow"}
        active = await start(world, "a", VENDOR_TIMEOUT="30")
        standby = await start(world, "b")
        assert (await active.health())["role"] == "active"
        health = await standby.health()
        assert (health["role"], health["instance"], health["version"]) == (
            "standby",
            "b",
            int(version),
        )
        await eventually(lambda: len(world.twilio.requests) == 3, "the third send in flight")
        assert senders(world) == {"a": ["REF00001", "REF00002", "REF00003"], "b": []}
        await active.kill()

        for n in (4, 5, 6):
            world.ledger.schedule(n)
        await until_role(standby, "active")
        await eventually(world.all_sent, "every reminder sent", timeout=15.0)
        assert sorted(world.twilio.refs()) == [f"REF{n:05d}" for n in range(1, 7)]
        # The standby asked Twilio about the send the active died in, and found it.
        assert world.twilio.lookups == 1
        assert senders(world) == {
            "a": ["REF00001", "REF00002", "REF00003"],
            "b": ["REF00004", "REF00005", "REF00006"],
        }
        assert world.aliyun.requests == []
        # Logged just after the row is marked sent, which the wait above may see first.
        await eventually(
            lambda: "interrupted rem-000003 had been sent via twilio" in standby.log.read_text(),
            "the standby's account of the interrupted send",
        )
        assert await standby.stop() == 0


@async_test
async def test_a_frozen_active_that_wakes_after_losing_the_lease_sends_nothing_more(
    tmp_path: Path,
) -> None:
    async with World(tmp_path, reminders=2) as world:
        # The second send gets no answer and is never taken: the active, frozen, cannot tell.
        world.twilio.once = {"REF00002": "hang"}
        # A second worker, free to claim the backlog the moment the ex-active wakes. Its vendor
        # timeout outlasts the standby's start (slow on a loaded machine): the send must still
        # hang when the active is frozen, not have timed out and failed over already.
        active = await start(world, "a", WORKERS="2", VENDOR_TIMEOUT="30")
        standby = await start(world, "b", WORKERS="2")
        await eventually(lambda: len(world.twilio.requests) == 2, "the second send in flight")
        active.process.send_signal(signal.SIGSTOP)
        await until_role(standby, "active")
        # Twilio has no such message, so the new active sends it.
        await eventually(world.all_sent, "the standby re-sent the frozen send", timeout=15.0)
        world.ledger.schedule(3)
        await eventually(world.all_sent, "the standby sent the next one")

        # Twilio fails the frozen send, and the ex-active wakes with its send timed out and
        # not found at Twilio: failing over to Alibaba would send it a second time.
        world.twilio.release.set()
        world.ledger.schedule(4)
        active.process.send_signal(signal.SIGCONT)
        await eventually(
            lambda: "a lost the lease" in active.log.read_text(), "the ex-active standing by"
        )
        assert (await active.health())["role"] == "standby"
        world.ledger.schedule(5)
        await eventually(world.all_sent, "the rest sent by the new active")
        assert world.aliyun.requests == []
        assert senders(world) == {
            "a": ["REF00001", "REF00002"],
            "b": ["REF00002", "REF00003", "REF00004", "REF00005"],
        }
        assert sorted(world.twilio.refs()) == [f"REF{n:05d}" for n in range(1, 6)]
        assert world.statuses() == {f"rem-{n:06d}": "sent" for n in range(1, 6)}


@async_test
async def test_a_clean_stop_hands_the_lease_over_without_waiting_it_out(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=1) as world:
        # A lease that would take 60 s to expire: only its release lets the standby in sooner.
        active = await start(world, "a", LEASE_TTL="60")
        standby = await start(world, "b", LEASE_TTL="60")
        await eventually(world.all_sent, "the first reminder sent")
        assert await active.stop() == 0
        await until_role(standby, "active", timeout=20.0)
        world.ledger.schedule(2)
        await eventually(world.all_sent, "the next reminder sent by the new active")
        assert senders(world) == {"a": ["REF00001"], "b": ["REF00002"]}


def lease(path: Path) -> tuple[str, int] | None:
    """Who holds an unexpired lease, and in which term."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute(
            "SELECT holder, term FROM lease WHERE expires_at > ?", (time.time(),)
        ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def expire_lease(path: Path, in_seconds: float) -> None:
    """Set the lease to run out `in_seconds` from now, as time passing would."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE lease SET expires_at = ?", (time.time() + in_seconds,))


@pytest.mark.parametrize("version", [1, 2])
def test_every_feed_write_claim_and_mark_is_fenced_by_the_lease(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "outbox.sqlite3"
    a = Outbox(str(path), version, HaConfig("a", lease_ttl=60.0, lease_renew=1.0))
    b = Outbox(str(path), version, HaConfig("b", lease_ttl=60.0, lease_renew=1.0))
    entries = [ReminderRecord.from_ledger(record(n, lead=-1.0)) for n in (1, 2, 3)]
    try:
        with pytest.raises(LeaseLost):  # a standby that never held it
            b.add(entries, 3)
        assert a.take_lease() == 1 and b.take_lease() is None
        assert lease(path) == ("a", 1)
        assert a.add(entries, 3) == 3
        first = a.claim()
        assert first is not None and first.record.reminder_id == "rem-000001"
        a.mark_trying(first.record.message(), "twilio")

        expire_lease(path, -1.0)  # a froze past its lease's end
        assert b.take_lease() == 2
        for write in (
            a.claim,
            lambda: a.add(entries, 3),
            lambda: a.mark_sent("rem-000001", "twilio", "SM1"),
            lambda: a.mark_trying(entries[1].message(), "aliyun"),
            lambda: a.retry_later("rem-000001", 1.0, "timeout"),
            lambda: a.requeue("rem-000001"),
        ):
            with pytest.raises(LeaseLost):
                write()
        assert not a.renew_lease() and a.take_lease() is None
        # Facts from the vendors and the borrowers are kept whoever records them.
        assert a.opt_out("+8613900000003", "twilio")
        assert a.record_delivery("delivered", ref="REF00002") == 1

        [interrupted] = b.interrupted()
        assert interrupted.message == entries[0].message()
        b.requeue("rem-000001")
        expire_lease(path, 0.5)  # less than one renewal period left: b claims nothing now
        assert b.claim() is None
        assert b.renew_lease()
        claimed = [b.claim(), b.claim(), b.claim()]
        assert sorted(row.record.reminder_id for row in claimed if row) == [
            "rem-000001",
            "rem-000002",
            "rem-000003",
        ]
        assert b.counts() == {"sending": 3}
        b.release_lease()
        assert lease(path) is None and a.take_lease() == 3
    finally:
        a.close()
        b.close()


def test_active_standby_settings_are_checked(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.urls = {name: "http://127.0.0.1:9" for name in ("ledger", "twilio", "aliyun", "alerts")}
    base = world.env(PORT="8080", PUBLIC_URL="http://127.0.0.1:8080")
    assert config_error(**base, HA_MODE="active-active") == [
        "reminder-service: HA_MODE must be 'off' or 'active-standby', got 'active-active'"
    ]
    assert config_error(**base, HA_MODE="active-standby") == [
        "reminder-service: missing required environment variable INSTANCE_NAME"
    ]
    assert config_error(**base, HA_MODE="active-standby", INSTANCE_NAME="a", LEASE_RENEW="2") == [
        "reminder-service: LEASE_RENEW must be at most half of LEASE_TTL (3s), got 2s"
    ]
    assert config_error(**{**base, "NOTIFIER_VERSION": "3"}) == [
        "reminder-service: NOTIFIER_VERSION must be 1 or 2, got '3'"
    ]


@async_test
async def test_a_standby_locked_out_of_the_outbox_keeps_trying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(outbox_module, "BUSY_TIMEOUT", 0.1)
    path = tmp_path / "outbox.sqlite3"
    ha = HaConfig("b", lease_ttl=1.0, lease_renew=0.1)
    outbox = Outbox(str(path), 2, ha)
    # Another instance frozen in the middle of a write holds the write lock.
    frozen = sqlite3.connect(path, isolation_level=None)
    frozen.execute("BEGIN IMMEDIATE")
    stop, sending = asyncio.Event(), asyncio.Event()

    async def active(halt: asyncio.Event) -> None:
        sending.set()
        await halt.wait()

    leadership = Leadership(outbox, ha)
    task = asyncio.create_task(leadership.run(stop, active))
    try:
        await eventually(
            lambda: caplog.text.count("cannot take the lease now: database is locked") >= 2,
            "two tries refused",
        )
        assert leadership.role == "standby" and not sending.is_set()
        frozen.execute("ROLLBACK")
        await asyncio.wait_for(sending.wait(), 5.0)
        assert leadership.role == "active"
    finally:
        stop.set()
        await asyncio.wait_for(task, 5.0)
        frozen.close()
        outbox.close()
    assert lease(path) is None, "given up on stop"
