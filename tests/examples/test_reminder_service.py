"""The reference notifier run as a real process against fake ledger, vendors and alert sink,
in version 1 and (where the outbox is involved) version 2."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from examples.reminder_service.breaker import Breaker, QuietStreak
from examples.reminder_service.reminder import ReminderRecord
from examples.reminder_service.replies import e164, is_stop
from examples.reminder_service.vendors import aliyun_signature
from tests.examples.notifierkit import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    ALIYUN_SIGN,
    ALIYUN_TEMPLATE,
    ROOT,
    TWILIO_FROM,
    World,
    async_test,
    config_error,
    epoch,
    eventually,
    expected_aliyun_signature,
    free_port,
    phone,
    record,
    reply_stop,
    revise,
    stamp,
)


@pytest.fixture(params=["1", "2"])
def version(request: pytest.FixtureRequest) -> str:
    """NOTIFIER_VERSION: each version on its own outbox schema behaves the same."""
    return str(request.param)


def test_missing_variable_exits_2_with_one_line() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PORT": "8080"}
    result = subprocess.run(
        [sys.executable, "-m", "examples.reminder_service"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "reminder-service: missing required environment variable LEDGER_URL"
    ]


def test_aliyun_signature_matches_alibabas_published_example() -> None:
    # The worked example of Alibaba Cloud's SMS signature documentation (a GET request).
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert aliyun_signature(params, "testSecret", http_method="GET") == (
        "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    )


def test_aliyun_signature_of_a_post_matches_an_independent_computation() -> None:
    params = {
        "Action": "SendSms",
        "AccessKeyId": ALIYUN_KEY_ID,
        "SignName": ALIYUN_SIGN,
        "TemplateParam": '{"name":"王 秀*英~","ref":"K7Q2M9XA"}',
        "Timestamp": "2026-11-28T17:50:00Z",
    }
    assert aliyun_signature(params, ALIYUN_SECRET) == expected_aliyun_signature(
        params, ALIYUN_SECRET
    )


@async_test
async def test_sends_each_reminder_once_and_records_delivery_reports(
    tmp_path: Path, version: str
) -> None:
    async with World(tmp_path, reminders=5, version=version) as world:
        service = await world.start(WORKERS="3")
        await eventually(world.all_sent, "all five reminders sent")
        assert sorted(world.twilio.refs()) == [f"REF{n:05d}" for n in range(1, 6)]
        first = world.twilio.accepted[0]
        n = int(first["ref"][3:])
        assert first["To"] == f"+86139{n:08d}"
        assert first["From"] == TWILIO_FROM
        assert first["StatusCallback"] == f"{service.url}/dlr/twilio"
        assert first["Body"] == (
            f"【示例银行】尊敬的王秀英，您的房贷本期还款{5000 + n}.00元将于2026-12-05到期，"
            f"还款卡尾号{n:04d}，请按时还款。ref:REF{n:05d} 回T退订"
        )
        row = world.rows()[f"rem-{n:06d}"]
        assert (row["vendor"], row["message_id"]) == ("twilio", "SM" + "1".zfill(32))

        async with aiohttp.ClientSession() as session:
            dlr = {"MessageSid": row["message_id"], "MessageStatus": "delivered"}
            async with session.post(f"{service.url}/dlr/twilio", data=dlr) as response:
                assert response.status == 200
            stale = {"MessageSid": row["message_id"], "MessageStatus": "sent"}
            async with session.post(f"{service.url}/dlr/twilio", data=stale) as response:
                assert response.status == 200
            # Another reminder than the one just delivered: with three workers any may go first.
            other = n % 5 + 1
            report = [{"out_id": f"REF{other:05d}", "biz_id": "unknown", "success": False}]
            async with session.post(f"{service.url}/dlr/aliyun", json=report) as response:
                assert await response.json() == {"code": 0}
            form, json_type = "application/x-www-form-urlencoded", "application/json"
            bad_inputs = [
                ("/dlr/twilio", form, b"MessageSid=SM1"),
                ("/dlr/twilio", form + "; charset=bogus", b"MessageSid=SM1&MessageStatus=sent"),
                ("/dlr/twilio", "multipart/form-data; boundary=x", b"garbage"),
                ("/dlr/aliyun", json_type, b"{not json"),
                ("/dlr/aliyun", json_type, b'{"out_id": "REF00001"}'),
                ("/dlr/aliyun", json_type, b'[{"out_id": "REF00001", "success": "yes"}]'),
                ("/dlr/aliyun", json_type, b"\xff\xfe"),
                ("/dlr/aliyun", json_type, b"[" * 100_000),
            ]
            for path, content_type, body in bad_inputs:
                headers = {"Content-Type": content_type}
                async with session.post(service.url + path, data=body, headers=headers) as resp:
                    assert resp.status == 400, (path, content_type, body[:40])
            async with session.get(f"{service.url}/healthz") as response:
                health = await response.json()
        assert health == {
            "status": "ok",
            "version": int(version),
            "role": "active",
            "instance": None,
            "mode": "resilient",
            "defect": None,
            "outbox": {"sent": 5},
        }
        # Each checked against the primary just before it was sent, once.
        assert sorted(world.ledger.primary_reads) == [f"rem-{n:06d}" for n in range(1, 6)]
        rows = world.rows()
        assert rows[f"rem-{n:06d}"]["delivery"] == "delivered"
        assert rows[f"rem-{other:06d}"]["delivery"] == "undelivered"
        assert await service.stop() == 0


@pytest.mark.parametrize("failure", ["http-500", "refused", "timeout"])
@async_test
async def test_resilient_fails_over_to_the_secondary(tmp_path: Path, failure: str) -> None:
    async with World(tmp_path) as world:
        overrides = {"VENDOR_TIMEOUT": "0.3"} if failure == "timeout" else {}
        if failure == "refused":
            overrides["TWILIO_BASE_URL"] = f"http://127.0.0.1:{free_port()}"
        world.twilio.always = "hang" if failure == "timeout" else "error"
        await world.start(**overrides)
        await eventually(world.all_sent, "all reminders sent")
        assert world.twilio.accepted == []
        assert sorted(world.aliyun.refs()) == ["REF00001", "REF00002", "REF00003"]
        assert {row["vendor"] for row in world.rows().values()} == {"ali-backup"}
        sent = world.aliyun.accepted[0]
        assert sent["PhoneNumbers"] == "13900000001"
        assert (sent["SignName"], sent["TemplateCode"]) == (ALIYUN_SIGN, ALIYUN_TEMPLATE)
        assert json.loads(sent["TemplateParam"]) == {
            "name": "王秀英",
            "amount": "5001.00",
            "due_date": "2026-12-05",
            "ref": "REF00001",
            "card_tail": "0001",
        }
        assert world.aliyun.bad_signatures == 0


@async_test
async def test_resilient_fails_over_when_aliyun_refuses_inside_http_200(
    tmp_path: Path, version: str
) -> None:
    async with World(tmp_path, version=version) as world:
        world.aliyun.always = "error"
        await world.start(PRIMARY_VENDOR="ali-backup", SECONDARY_VENDOR="twilio")
        await eventually(world.all_sent, "all reminders sent")
        assert world.aliyun.accepted == []
        assert len(world.aliyun.requests) >= 1
        assert sorted(world.twilio.refs()) == ["REF00001", "REF00002", "REF00003"]


@async_test
async def test_resilient_retries_a_lone_vendor_with_backoff(tmp_path: Path, version: str) -> None:
    async with World(tmp_path, reminders=1, version=version) as world:
        world.twilio.script = ["error", "error"]
        await world.start(SECONDARY_VENDOR="")
        await eventually(world.all_sent, "the reminder sent after two failures")
        assert [r["ref"] for r in world.twilio.requests] == ["REF00001"] * 3
        assert world.twilio.refs() == ["REF00001"]


@async_test
async def test_naive_marks_failed_and_neither_retries_nor_fails_over(
    tmp_path: Path, version: str
) -> None:
    async with World(tmp_path, reminders=2, version=version) as world:
        world.twilio.script = ["error"]
        await world.start(NOTIFIER_MODE="naive")
        await eventually(
            lambda: world.statuses() == {"rem-000001": "failed", "rem-000002": "sent"},
            "first reminder failed, second sent",
        )
        # Absence needs a window: longer than the resilient first backoff (0.5 s).
        await asyncio.sleep(1.0)
        assert [r["ref"] for r in world.twilio.requests] == ["REF00001", "REF00002"]
        assert world.aliyun.requests == []
        assert world.statuses()["rem-000001"] == "failed"


@pytest.mark.parametrize("vendor", ["twilio", "ali-backup"])
@pytest.mark.parametrize("reconcile", ["on", "off"])
@async_test
async def test_a_send_whose_answer_never_came_is_looked_up_before_failing_over(
    tmp_path: Path, vendor: str, reconcile: str, version: str
) -> None:
    async with World(tmp_path, reminders=2, version=version) as world:
        primary, secondary = (
            (world.twilio, world.aliyun) if vendor == "twilio" else (world.aliyun, world.twilio)
        )
        primary.script = ["swallow"]
        other = "ali-backup" if vendor == "twilio" else "twilio"
        await world.start(
            PRIMARY_VENDOR=vendor, SECONDARY_VENDOR=other, VENDOR_TIMEOUT="0.3", RECONCILE=reconcile
        )
        await eventually(world.all_sent, "both reminders sent")
        assert sorted(primary.refs()) == ["REF00001", "REF00002"]
        if reconcile == "on":
            assert primary.lookups == 1 and secondary.requests == []
            assert {row["vendor"] for row in world.rows().values()} == {vendor}
        else:  # sent again through the other vendor: the borrower gets it twice
            assert primary.lookups == 0 and secondary.refs() == ["REF00001"]


@async_test
async def test_a_lost_answer_the_vendor_cannot_explain_yet_is_asked_again_not_sent_twice(
    tmp_path: Path, version: str
) -> None:
    async with World(tmp_path, reminders=1, version=version) as world:
        world.twilio.script = ["swallow"]
        world.twilio.lookup_failures = 2
        await world.start(VENDOR_TIMEOUT="0.3")
        await eventually(world.all_sent, "the reminder settled as sent")
        # Twilio took it, lost the answer and could not say twice; asked a third time, it
        # had it. Alibaba was never asked to send it again.
        assert world.twilio.refs() == ["REF00001"] and world.twilio.lookups == 3
        assert world.aliyun.requests == []
        assert world.rows()["rem-000001"]["vendor"] == "twilio"


@async_test
async def test_a_lost_answer_past_its_patience_is_sent_again_elsewhere(
    tmp_path: Path, version: str
) -> None:
    async with World(tmp_path, reminders=0, version=version) as world:
        # Due 30 s ago: waiting for Twilio to answer would cost the reminder its window.
        world.ledger.schedule(1, lead=-30.0)
        world.twilio.script = ["swallow"]
        world.twilio.lookup_failures = 1
        await world.start(VENDOR_TIMEOUT="0.3")
        await eventually(world.all_sent, "the reminder sent")
        assert world.twilio.refs() == world.aliyun.refs() == ["REF00001"]
        assert world.twilio.lookups == 1


@pytest.mark.parametrize("interrupted", ["swallow", "hang"])
@async_test
async def test_restart_neither_loses_nor_repeats_reminders(
    tmp_path: Path, interrupted: str, version: str
) -> None:
    async with World(tmp_path, reminders=3, version=version) as world:
        world.ledger.ignore_cursor = True
        world.twilio.script = ["ok", "ok", interrupted]
        first = await world.start(SECONDARY_VENDOR="")
        await eventually(lambda: len(world.twilio.requests) == 3, "third send in flight")
        await first.kill()

        world.ledger.schedule(4)
        second = await world.start(SECONDARY_VENDOR="")
        await eventually(world.all_sent, "all four reminders sent")
        assert sorted(world.twilio.refs()) == ["REF00001", "REF00002", "REF00003", "REF00004"]
        assert await second.stop() == 0
        # The restart asks Twilio about the send it was killed in: sent if Twilio took it,
        # asked for again if not. Nothing else is asked twice.
        assert world.twilio.lookups == 1
        asked = sorted(r["ref"] for r in world.twilio.requests)
        again = ["REF00003"] if interrupted == "hang" else []
        assert asked == sorted(["REF00001", "REF00002", "REF00003", "REF00004", *again])


@async_test
async def test_sigterm_lets_the_in_flight_send_finish(tmp_path: Path, version: str) -> None:
    async with World(tmp_path, reminders=1, version=version) as world:
        world.twilio.script = ["hold"]
        service = await world.start()
        await eventually(lambda: len(world.twilio.requests) == 1, "send in flight")
        service.process.send_signal(signal.SIGTERM)
        await eventually(lambda: "stopping" in service.log.read_text(), "shutdown begun")
        world.twilio.release.set()
        assert await asyncio.wait_for(service.process.wait(), 5.0) == 0
        assert world.statuses() == {"rem-000001": "sent"}
        assert world.twilio.refs() == ["REF00001"]


@async_test
async def test_alerts_once_per_failing_streak(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=6) as world:
        world.twilio.always = "error"
        world.ledger.failures_left = 3
        await world.start()
        await eventually(world.all_sent, "all reminders sent via the secondary")
        await eventually(lambda: len(world.sink.alerts) >= 2, "ledger and vendor alerts")
        assert sorted(world.sink.alerts, key=lambda alert: alert["summary"]) == [
            {
                "severity": "critical",
                "summary": "ledger poll failing",
                "source": "reminder-service",
                "dependency": "ledger",
            },
            {
                "severity": "critical",
                "summary": "vendor twilio failing",
                "source": "reminder-service",
                "dependency": "twilio",
            },
        ]
        # The breaker opened after three failures, so the rest went straight to the secondary.
        assert len(world.twilio.requests) == 3


def test_stop_keywords_and_phone_forms() -> None:
    assert all(is_stop(text) for text in ["STOP", " stop\n", "Unsubscribe", "td", "T", "退订"])
    assert not any(is_stop(text) for text in ["", "STOP please", "thanks", "退"])
    assert e164("13800000001") == e164(" +8613800000001 ") == "+8613800000001"
    assert e164("12025550123") == e164("+12025550123") == "+12025550123"
    assert [e164(text) for text in ["", "+", "stop", "+0123456789", "138-0000-0001"]] == [None] * 5


@pytest.mark.parametrize(("via", "mode"), [("twilio", "resilient"), ("aliyun", "naive")])
@async_test
async def test_stop_reply_suppresses_the_borrowers_later_reminders(
    tmp_path: Path, via: str, mode: str, version: str
) -> None:
    async with World(tmp_path, reminders=1, version=version) as world:
        service = await world.start(NOTIFIER_MODE=mode)
        await eventually(world.all_sent, "the first reminder sent")
        async with aiohttp.ClientSession() as session:
            await reply_stop(session, service.url, via, "+8613900000001")
        # Queued ahead of the other borrower's, so that one being sent means this one is decided.
        world.ledger.schedule(3, lead=-0.5, borrower=1)
        world.ledger.schedule(2)
        await eventually(
            lambda: (
                world.statuses()
                == {"rem-000001": "sent", "rem-000002": "sent", "rem-000003": "suppressed"}
            ),
            "the opted-out borrower's reminder suppressed, the other's sent",
        )
        asked = [r["ref"] for r in world.twilio.requests + world.aliyun.requests]
        assert asked == ["REF00001", "REF00002"]
        log = service.log.read_text()
        assert f"opted out +8613900000001: {'Stop' if via == 'twilio' else 'TD'!r} via {via}" in log
        assert "suppressed rem-000003: +8613900000001 opted out" in log


@async_test
async def test_stop_during_a_failing_send_stops_the_failover(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=1) as world:
        world.twilio.script = ["hang"]
        service = await world.start()
        await eventually(lambda: len(world.twilio.requests) == 1, "the send to twilio in flight")
        async with aiohttp.ClientSession() as session:
            await reply_stop(session, service.url, "aliyun", "+8613900000001")
        world.twilio.release.set()
        await eventually(
            lambda: world.statuses() == {"rem-000001": "suppressed"}, "the failover suppressed"
        )
        assert world.aliyun.requests == []


@async_test
async def test_inbound_replies_reject_bad_bodies_and_ignore_other_texts(
    tmp_path: Path, version: str
) -> None:
    async with World(tmp_path, reminders=0, version=version) as world:
        service = await world.start()
        form, json_type = "application/x-www-form-urlencoded", "application/json"
        bad_inputs = [
            ("/inbound/twilio", form, b"Body=STOP"),
            ("/inbound/twilio", form, b"From=%2B8613900000001"),
            ("/inbound/twilio", form, b"From=nobody&Body=STOP"),
            ("/inbound/twilio", form + "; charset=bogus", b"From=%2B8613900000001&Body=STOP"),
            ("/inbound/twilio", "multipart/form-data; boundary=x", b"garbage"),
            ("/inbound/aliyun", json_type, b"{not json"),
            ("/inbound/aliyun", json_type, b'{"phone_number": "13900000001", "content": "TD"}'),
            ("/inbound/aliyun", json_type, b'[{"phone_number": 13900000001, "content": "TD"}]'),
            ("/inbound/aliyun", json_type, b'[{"phone_number": "13900000001"}]'),
            ("/inbound/aliyun", json_type, b'["13900000001"]'),
            ("/inbound/aliyun", json_type, b"\xff\xfe"),
            ("/inbound/aliyun", json_type, b"[" * 100_000),
        ]
        async with aiohttp.ClientSession() as session:
            for path, content_type, body in bad_inputs:
                headers = {"Content-Type": content_type}
                async with session.post(service.url + path, data=body, headers=headers) as resp:
                    assert resp.status == 400, (path, content_type, body[:40])
            chat = {"From": "+8613900000001", "Body": "已还款，谢谢"}
            async with session.post(f"{service.url}/inbound/twilio", data=chat) as response:
                assert response.status == 200
            chat_up = [{"phone_number": "13900000002", "content": "STOP please"}]
            async with session.post(f"{service.url}/inbound/aliyun", json=chat_up) as response:
                assert await response.json() == {"code": 0}
        assert world.stop_list() == 0


def test_breaker_lets_one_trial_through_after_the_cooldown() -> None:
    now = [0.0]
    breaker = Breaker(threshold=3, cooldown=5.0, clock=lambda: now[0])
    assert [breaker.record_failure() for _ in range(4)] == [False, False, True, False]
    assert not breaker.allow()
    now[0] = 5.1
    assert breaker.allow()
    assert not breaker.allow(), "a second caller must wait for the trial's verdict"
    breaker.record_failure()
    now[0] = 10.0
    assert not breaker.allow(), "a failed trial re-opens the breaker for a full cool-down"
    now[0] = 10.2
    assert breaker.allow()
    breaker.record_success()
    assert breaker.allow() and breaker.allow()


def test_a_bad_defect_exits_2_with_one_line(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.urls = {name: "http://127.0.0.1:9" for name in ("ledger", "twilio", "aliyun", "alerts")}
    env = world.env(PORT="8080", PUBLIC_URL="http://127.0.0.1:8080", DEFECT="forgetful")
    [line] = config_error(**env)
    assert line.startswith("reminder-service: DEFECT must be one of no-failover, blind-resend, ")
    assert line.endswith(", slow-drain, leaks-pii, got 'forgetful'")


def test_records_are_read_strictly() -> None:
    entry = record(7, lead=5.0)
    parsed = ReminderRecord.from_ledger(entry)
    assert (parsed.reminder_id, parsed.ref, parsed.version, parsed.borrower_id) == (
        "rem-000007",
        "REF00007",
        1,
        "B000007",
    )
    assert (parsed.phone, parsed.amount, parsed.due_date) == (phone(7), "5007.00", "2026-12-05")
    assert not parsed.cancelled and not parsed.opted_out
    assert parsed.remind_at.timestamp() == epoch(entry["remind_at"])
    assert ReminderRecord.from_json(parsed.to_json()) == parsed
    # The offset is honoured: the same instant written in UTC is the same instant.
    utc = revise(entry, remind_at="2026-12-01T10:20:05.123Z")
    east = revise(entry, remind_at="2026-12-01T18:20:05.123+08:00")
    assert ReminderRecord.from_ledger(utc).remind_at == ReminderRecord.from_ledger(east).remind_at
    assert ReminderRecord.from_ledger(revise(entry, status="cancelled")).cancelled
    renamed = revise(entry)
    renamed["installment"]["dueDate"] = renamed["installment"].pop("due_date")
    malformed = [
        renamed,
        revise(entry, due_date="05/12/2026"),
        revise(entry, due_date="2026-02-30"),
        revise(entry, amount="5234"),
        revise(entry, amount=5234.0),
        revise(entry, remind_at="2026-12-01T18:20:05.123"),
        revise(entry, status="paid"),
        revise(entry, version="1"),
        revise(entry, version=0),
        revise(entry, opted_out="no"),
        revise(entry, phone="13912345678"),
        [entry],
    ]
    for item in malformed:
        with pytest.raises(ValueError):
            ReminderRecord.from_ledger(item)


def test_replica_differences_alert_once_per_quiet_separated_streak() -> None:
    now = [0.0]
    streak = QuietStreak(quiet=10.0, clock=lambda: now[0])
    starts = []
    for at in [0.0, 3.0, 12.0, 21.9, 32.0]:
        now[0] = at
        starts.append(streak.record())
    assert starts == [True, False, False, False, True]


@async_test
async def test_waits_for_remind_at_then_sends_promptly(tmp_path: Path, version: str) -> None:
    async with World(tmp_path, reminders=0, version=version) as world:
        await world.start()
        entry = world.ledger.schedule(1, lead=1.5)
        await eventually(lambda: world.stored("rem-000001"), "the feed entry stored")
        assert world.statuses() == {"rem-000001": "pending"}
        assert world.twilio.requests == []
        await eventually(world.all_sent, "the reminder sent")
        [arrived] = world.twilio.arrivals
        remind_at = epoch(entry["remind_at"])
        assert remind_at <= arrived <= remind_at + 1.5, arrived - remind_at
        assert world.rows()["rem-000001"]["next_attempt_at"] == pytest.approx(remind_at, abs=1e-3)


@async_test
async def test_keeps_the_highest_version_and_never_resends_a_sent_row(
    tmp_path: Path, version: str
) -> None:
    async with World(tmp_path, reminders=0, version=version) as world:
        world.ledger.primary_down = True  # what is sent is then what the outbox kept
        first = world.ledger.schedule(1)
        world.ledger.change("rem-000001", amount="4000.00")
        world.ledger.feed.append(first)  # a replica re-serving old news
        service = await world.start()
        await eventually(world.all_sent, "the reminder sent")
        await eventually(lambda: world.cursor() == 3, "the feed read")
        assert world.rows()["rem-000001"]["version"] == 2
        assert world.record("rem-000001")["amount"] == "4000.00"
        assert "还款4000.00元" in world.twilio.accepted[0]["Body"]

        world.ledger.change("rem-000001", amount="3000.00")
        await eventually(lambda: world.stored("rem-000001", version=3), "version 3 stored")
        assert world.statuses() == {"rem-000001": "sent"}
        assert world.twilio.refs() == ["REF00001"]
        assert await service.stop() == 0
        assert world.twilio.refs() == ["REF00001"]


@async_test
async def test_a_cancelled_reminder_is_never_sent(tmp_path: Path, version: str) -> None:
    async with World(tmp_path, reminders=3, version=version) as world:
        world.ledger.change("rem-000001", status="cancelled")
        # Repaid at the source, not yet in the replica: the primary check stops it.
        world.ledger.change("rem-000002", status="cancelled", in_feed=False)
        service = await world.start()
        await eventually(
            lambda: (
                world.statuses()
                == {"rem-000001": "cancelled", "rem-000002": "cancelled", "rem-000003": "sent"}
            ),
            "two cancelled, one sent",
        )
        assert world.twilio.requests + world.aliyun.requests == [world.twilio.accepted[0]]
        assert world.twilio.refs() == ["REF00003"]
        assert "cancelled rem-000002: repaid" in service.log.read_text()


@async_test
async def test_a_borrower_opted_out_at_the_bank_gets_nothing(tmp_path: Path, version: str) -> None:
    async with World(tmp_path, reminders=3, version=version) as world:
        world.ledger.change("rem-000001", opted_out=True)
        world.ledger.change("rem-000002", opted_out=True, in_feed=False)
        await world.start()
        await eventually(
            lambda: (
                world.statuses()
                == {"rem-000001": "suppressed", "rem-000002": "suppressed", "rem-000003": "sent"}
            ),
            "two suppressed, one sent",
        )
        assert [r["ref"] for r in world.twilio.requests + world.aliyun.requests] == ["REF00003"]


@async_test
async def test_a_newer_entry_changes_the_phone(tmp_path: Path, version: str) -> None:
    async with World(tmp_path, reminders=0, version=version) as world:
        world.ledger.primary_down = True  # the feed's newer entry alone must do it
        await world.start()
        world.ledger.schedule(1, lead=1.0)
        await eventually(lambda: world.stored("rem-000001"), "version 1 stored")
        world.ledger.change("rem-000001", phone="+8613700000077")
        await eventually(world.all_sent, "the reminder sent")
        assert [r["To"] for r in world.twilio.requests] == ["+8613700000077"]


@async_test
async def test_the_primary_wins_over_a_drifted_replica_and_alerts_once(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=0) as world:
        world.ledger.schedule(1, drift={"phone": "+8613700000001"})
        world.ledger.schedule(2, drift={"amount": "9999.00"})
        world.ledger.schedule(3, drift={"due_date": "2026-12-15"})
        world.ledger.schedule(4)
        # A change the replica never got, made at the source five seconds ago.
        world.ledger.change("rem-000004", phone="+8613700000004", in_feed=False)
        world.ledger.truth["rem-000004"]["as_of"] = stamp(time.time() - 5)
        world.ledger.schedule(5)
        service = await world.start()
        await eventually(world.all_sent, "all sent")
        by_ref = {r["ref"]: r for r in world.twilio.accepted}
        assert {ref: r["To"] for ref, r in by_ref.items()} == {
            "REF00001": phone(1),
            "REF00002": phone(2),
            "REF00003": phone(3),
            "REF00004": "+8613700000004",
            "REF00005": phone(5),
        }
        assert "还款5002.00元将于2026-12-05到期" in by_ref["REF00002"]["Body"]
        assert "还款5003.00元将于2026-12-05到期" in by_ref["REF00003"]["Body"]
        await eventually(lambda: len(world.sink.alerts) == 1, "the replica alert")
        assert world.sink.alerts == [
            {
                "severity": "critical",
                "summary": "ledger replica differs from primary",
                "source": "reminder-service",
                "dependency": "ledger",
            }
        ]
        log = service.log.read_text()
        assert log.count("ledger replica differs from primary on") == 4
        assert "rem-000001: version 1 has phone '+8613700000001'" in log
        assert "rem-000004: replica at version 1, primary at 2" in log
        assert "differs from primary on rem-000005" not in log


@async_test
async def test_a_reminder_the_primary_does_not_know_is_withheld(
    tmp_path: Path, version: str
) -> None:
    async with World(tmp_path, reminders=1, version=version) as world:
        world.ledger.feed.append(record(2))  # in the replica only, as leaked test data
        service = await world.start()
        await eventually(
            lambda: world.statuses() == {"rem-000001": "sent", "rem-000002": "unknown"},
            "the known one sent, the unknown one withheld",
        )
        assert world.twilio.refs() == ["REF00001"]
        await eventually(lambda: len(world.sink.alerts) == 1, "the replica alert")
        assert world.sink.alerts[0]["dependency"] == "ledger"
        assert "rem-000002: the primary has no such reminder" in service.log.read_text()


@async_test
async def test_with_the_primary_down_the_feed_is_sent(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=5) as world:
        world.ledger.primary_down = True
        service = await world.start()
        await eventually(world.all_sent, "all sent")
        assert sorted(r["To"] for r in world.twilio.accepted) == [phone(n) for n in range(1, 6)]
        assert "primary record of rem-000001 unavailable, sending the feed's: HTTP 503" in (
            service.log.read_text()
        )
        # After three failures the primary is skipped for a cool-down, not asked per send.
        assert len(world.ledger.primary_reads) == 3


@async_test
async def test_a_malformed_entry_fails_the_poll_until_the_page_is_right(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=2) as world:
        good = world.ledger.feed[0]
        renamed = revise(good)
        renamed["installment"]["dueDate"] = renamed["installment"].pop("due_date")
        world.ledger.feed[0] = renamed
        service = await world.start()
        await eventually(lambda: len(world.sink.alerts) == 1, "the ledger alert")
        assert world.sink.alerts[0]["dependency"] == "ledger"
        assert world.statuses() == {}, "nothing of a malformed page is stored"
        assert "malformed page: reminder field 'due_date'" in service.log.read_text()
        world.ledger.feed[0] = good
        await eventually(world.all_sent, "the same page read again and sent")


# One test per DEFECT: each shows its defect against the fakes, beside what the reference does.


@async_test
async def test_defect_no_failover(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=2) as world:
        world.twilio.script = ["error"]
        service = await world.start(DEFECT="no-failover")
        await eventually(
            lambda: world.statuses() == {"rem-000001": "failed", "rem-000002": "sent"},
            "the failed send given up",
        )
        # `failed` is final: the row is never claimed again, so nothing more can be asked.
        assert [r["ref"] for r in world.twilio.requests] == ["REF00001", "REF00002"]
        assert world.aliyun.requests == []
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{service.url}/healthz") as response,
        ):
            health = await response.json()
        assert (health["mode"], health["defect"]) == ("naive", "no-failover")


@async_test
async def test_defect_blind_resend(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=1) as world:
        world.twilio.script = ["swallow"]
        await world.start(DEFECT="blind-resend", VENDOR_TIMEOUT="0.3")
        await eventually(world.all_sent, "the reminder sent")
        # Twilio took it; nobody asked; Alibaba sent it again.
        assert world.twilio.refs() == world.aliyun.refs() == ["REF00001"]
        assert world.twilio.lookups == 0


@pytest.mark.parametrize("defect", ["", "cached-phones"])
@async_test
async def test_defect_cached_phones(tmp_path: Path, defect: str) -> None:
    async with World(tmp_path, reminders=0) as world:
        await world.start(DEFECT=defect)
        # The number changes between the reminder's scheduling and its sending...
        world.ledger.schedule(1, lead=1.0)
        await eventually(lambda: world.stored("rem-000001"), "version 1 stored")
        world.ledger.change("rem-000001", phone="+8613700000001")
        await eventually(world.all_sent, "the first reminder sent")
        # ... and again before the borrower's next installment.
        world.ledger.schedule(2, borrower=1)
        world.ledger.change("rem-000002", phone="+8613700000002")
        await eventually(world.all_sent, "the second reminder sent")
        expected = [phone(1)] * 2 if defect else ["+8613700000001", "+8613700000002"]
        assert [r["To"] for r in world.twilio.requests] == expected


@async_test
async def test_defect_ignores_repayments(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=2) as world:
        world.ledger.change("rem-000001", status="cancelled")
        world.ledger.change("rem-000002", status="cancelled", in_feed=False)
        await world.start(DEFECT="ignores-repayments")
        await eventually(world.all_sent, "both repaid reminders sent")
        assert sorted(world.twilio.refs()) == ["REF00001", "REF00002"]


@async_test
async def test_defect_ignores_opt_outs(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=0) as world:
        service = await world.start(DEFECT="ignores-opt-outs")
        async with aiohttp.ClientSession() as session:
            await reply_stop(session, service.url, "twilio", phone(3))
        world.ledger.schedule(1)
        world.ledger.change("rem-000001", opted_out=True)
        world.ledger.schedule(2)
        world.ledger.change("rem-000002", opted_out=True, in_feed=False)
        world.ledger.schedule(3)
        await eventually(world.all_sent, "all three sent")
        assert sorted(world.twilio.refs()) == ["REF00001", "REF00002", "REF00003"]


@pytest.mark.parametrize("defect", ["", "wrong-timezone"])
@async_test
async def test_defect_wrong_timezone(tmp_path: Path, defect: str) -> None:
    async with World(tmp_path, reminders=1) as world:
        remind_at = epoch(world.ledger.feed[0]["remind_at"])
        await world.start(DEFECT=defect)
        await eventually(lambda: world.stored("rem-000001"), "the entry stored")
        late = 8 * 3600 if defect else 0
        row = world.rows()["rem-000001"]
        assert row["next_attempt_at"] == pytest.approx(remind_at + late, abs=1e-3)
        if defect:
            assert row["status"] == "pending"
        else:
            await eventually(world.all_sent, "the reminder sent")


@pytest.mark.parametrize("vendor", ["twilio", "ali-backup"])
@async_test
async def test_defect_wrong_amount_format(tmp_path: Path, vendor: str) -> None:
    async with World(tmp_path, reminders=1) as world:
        other = "ali-backup" if vendor == "twilio" else "twilio"
        await world.start(
            DEFECT="wrong-amount-format", PRIMARY_VENDOR=vendor, SECONDARY_VENDOR=other
        )
        await eventually(world.all_sent, "the reminder sent")
        if vendor == "twilio":
            assert "本期还款5001元将于" in world.twilio.accepted[0]["Body"]
        else:
            assert json.loads(world.aliyun.accepted[0]["TemplateParam"])["amount"] == "5001"


@async_test
async def test_defect_never_alerts(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=4) as world:
        world.twilio.always = "error"
        world.ledger.failures_left = 3
        service = await world.start(DEFECT="never-alerts")
        await eventually(world.all_sent, "all reminders sent via the secondary")
        await eventually(
            lambda: service.log.read_text().count("alert not posted (DEFECT=never-alerts)") == 2,
            "both alerts held back",
        )
        # The defect returns before an alert is even queued: none can arrive later.
        assert world.sink.alerts == []


@async_test
async def test_defect_slow_drain(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=1) as world:
        world.twilio.script = ["error"]
        await world.start(DEFECT="slow-drain", WORKERS="4", SECONDARY_VENDOR="")
        await eventually(world.all_sent, "the first reminder sent after its failure")
        for n in range(2, 6):
            world.ledger.schedule(n)
        await eventually(world.all_sent, "the backlog drained", timeout=15.0)
        # The retry and the four after it, each waiting for its turn.
        gaps = [b - a for a, b in itertools.pairwise(world.twilio.arrivals[1:])]
        assert len(gaps) == 4
        assert min(gaps) >= 0.9, gaps
