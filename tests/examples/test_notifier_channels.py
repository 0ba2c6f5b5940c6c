"""The reference notifier's other channels: the push (FCM HTTP v1) and e-mail (SMTP) clients
against local fakes, the messages' minimal content and opt-out notice, and the fallback from SMS
to push to e-mail run as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from examples.reminder_service.channels import Verdict
from examples.reminder_service.mail import REF_HEADER, MailChannel
from examples.reminder_service.messages import mail_subject, mail_text, push_text, sms_text
from examples.reminder_service.push import PushChannel
from examples.reminder_service.reminder import OPTOUT_NOTICE, Reminder, ReminderRecord
from examples.reminder_service.settings import MailConfig, PushConfig
from tests.examples.notifierkit import (
    MAIL_FROM,
    PUSH_PROJECT,
    SMTP_PASSWORD,
    SMTP_USERNAME,
    FakeFCM,
    FakeMail,
    World,
    async_test,
    card,
    config_error,
    device_token,
    email,
    eventually,
    free_port,
    national_id,
    record,
    revise,
)


def reminder(n: int = 1, **changes: Any) -> Reminder:
    return ReminderRecord.from_ledger(revise(record(n), **changes)).message()


# The messages ---------------------------------------------------------------------------------


def test_every_message_ends_with_the_opt_out_notice_and_shows_only_the_cards_last_four() -> None:
    message = reminder(7)
    bodies = {
        "sms": sms_text(message),
        "sms with a link": sms_text(message, "https://m.bank.example/app"),
        "push": push_text(message),
        "email": mail_text(message),
    }
    for channel, body in bodies.items():
        assert body.rstrip().endswith(OPTOUT_NOTICE), channel
        assert "还款卡尾号0007" in body and "ref:REF00007" in body, channel
        assert card(7) not in body and national_id(7) not in body, channel
        assert "5007.00" in body and "2026-12-05" in body, channel
    assert "https://m.bank.example/app 回T退订" in bodies["sms with a link"]
    assert "2026-12-05" in mail_subject(message)


def test_a_borrower_without_a_card_gets_no_card_line() -> None:
    message = reminder(3, account=None)
    assert message.card_tail == ""
    assert "尾号" not in sms_text(message)


def test_the_reader_takes_null_contacts_and_refuses_malformed_ones() -> None:
    parsed = ReminderRecord.from_ledger(revise(record(2), email=None, device_token=None))
    assert (parsed.email, parsed.device_token, parsed.account) == (None, None, card(2))
    assert parsed.national_id == national_id(2)
    assert ReminderRecord.from_json(parsed.to_json()) == parsed
    missing = record(2)
    del missing["borrower"]["email"]
    bad = [
        (missing, "'email' is missing"),
        (revise(record(2), email="not-an-address"), "'email' is not in the contract's format"),
        (revise(record(2), national_id="1101051949"), "'national_id' is not in"),
        (revise(record(2), account="6222-0000"), "'account' is not in"),
        (revise(record(2), device_token=""), "'device_token' is not a non-empty string"),
    ]
    for entry, message in bad:
        with pytest.raises(ValueError, match=message):
            ReminderRecord.from_ledger(entry)


# The settings ---------------------------------------------------------------------------------


def _env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    world = World(tmp_path)
    world.urls = {name: "http://127.0.0.1:9" for name in ("ledger", "twilio", "aliyun", "alerts")}
    return world.env(PORT="8080", PUBLIC_URL="http://127.0.0.1:8080", **overrides)


def test_bad_channel_settings_exit_2_with_one_line(tmp_path: Path) -> None:
    cases = {
        "CHANNELS must be a comma list of sms, push, email with sms, got 'sms,fax'": {
            "CHANNELS": "sms,fax"
        },
        "CHANNELS must be a comma list of sms, push, email with sms, got 'push'": {
            "CHANNELS": "push"
        },
        "missing required environment variable PUSH_URL": {"CHANNELS": "sms,push"},
        "missing required environment variable SMTP_HOST": {"CHANNELS": "sms,email"},
        "SMTP_PORT must be an integer, got 'smtp'": {
            "CHANNELS": "sms,email",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": "smtp",
        },
        "a vendor may not be called 'push': it is a channel": {
            "SECONDARY_VENDOR": "push",
            "PUSH_KIND": "aliyun",
            "PUSH_BASE_URL": "http://127.0.0.1:9",
            "PUSH_ACCESS_KEY_ID": "k",
            "PUSH_ACCESS_KEY_SECRET": "s",
            "PUSH_SIGN_NAME": "n",
            "PUSH_TEMPLATE_CODE": "t",
        },
    }
    for expected, overrides in cases.items():
        assert config_error(**_env(tmp_path, **overrides)) == [f"reminder-service: {expected}"]


def test_an_unreadable_service_account_exits_2_with_one_line(tmp_path: Path) -> None:
    key_file = tmp_path / "sa.json"
    key_file.write_text('{"type": "service_account"}')
    env = _env(
        tmp_path,
        OUTBOX_PATH=str(tmp_path / "outbox.db"),
        CHANNELS="sms,push",
        PUSH_URL="http://127.0.0.1:9",
        PUSH_PROJECT=PUSH_PROJECT,
        PUSH_CREDENTIALS_FILE=str(key_file),
    )
    [line] = config_error(**env)
    assert line.startswith(f"reminder-service: PUSH_CREDENTIALS_FILE {key_file}: not a service")


# The push client against a fake FCM ------------------------------------------------------------


@contextlib.asynccontextmanager
async def fake_fcm(tmp_path: Path) -> AsyncIterator[tuple[FakeFCM, PushConfig]]:
    fcm = FakeFCM()
    app = web.Application()
    app.add_routes(
        [
            web.post("/token", fcm.token),
            web.post("/v1/projects/{project}/messages:send", fcm.send),
        ]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    fcm.url = f"http://{host}:{port}"
    config = PushConfig(fcm.url, PUSH_PROJECT, str(fcm.service_account(tmp_path / "sa.json")))
    try:
        yield fcm, config
    finally:
        await runner.cleanup()


@async_test
async def test_push_sends_with_one_access_token_and_reads_fcms_errors(tmp_path: Path) -> None:
    async with fake_fcm(tmp_path) as (fcm, config), aiohttp.ClientSession() as session:
        push = PushChannel(config, session, timeout=2.0)
        first = await push.send(reminder(1))
        second = await push.send(reminder(2))
        assert (first.verdict, first.message_id) == (
            Verdict.SENT,
            f"projects/{PUSH_PROJECT}/messages/1",
        )
        assert second.verdict is Verdict.SENT
        assert fcm.tokens_issued == 1  # fetched once, then reused while valid
        sent = fcm.accepted[0]
        assert sent["token"] == device_token(1)
        assert sent["data"] == {"ref": "REF00001"}
        assert sent["notification"]["title"] == "示例银行房贷还款提醒"
        assert sent["notification"]["body"] == push_text(reminder(1))
        fcm.once = {
            device_token(3): ["unregistered"],
            device_token(4): ["unavailable"],
            device_token(5): ["quota"],
        }
        stale, down, quota = [await push.send(reminder(n)) for n in (3, 4, 5)]
        assert (stale.verdict, stale.detail, stale.recipient) == (
            Verdict.GIVE_UP,
            "HTTP 404 UNREGISTERED",
            True,
        )
        assert (down.verdict, down.detail) == (Verdict.RETRY, "HTTP 503 UNAVAILABLE")
        assert (quota.verdict, quota.detail) == (Verdict.RETRY, "HTTP 429 QUOTA_EXCEEDED")
        assert not push.reaches(reminder(6, device_token=None))


@async_test
async def test_push_cannot_connect_is_retried_and_a_lost_answer_is_not(tmp_path: Path) -> None:
    async with fake_fcm(tmp_path) as (_, config), aiohttp.ClientSession() as session:
        closed = f"http://127.0.0.1:{free_port()}"
        refused = PushConfig(closed, config.project, config.credentials_file)
        result = await PushChannel(refused, session, timeout=1.0).send(reminder(1))
        # The token endpoint is up, FCM is not: nothing went out.
        assert result.verdict is Verdict.RETRY and result.detail.startswith("cannot connect")

    hung = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await hung.wait()
        return web.json_response({})

    async with fake_fcm(tmp_path) as (fcm, config), aiohttp.ClientSession() as session:
        app = web.Application()
        app.add_routes([web.post("/v1/projects/{project}/messages:send", hang)])
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        slow = PushConfig(f"http://{host}:{port}", config.project, config.credentials_file)
        result = await PushChannel(slow, session, timeout=0.5).send(reminder(1))
        hung.set()
        await runner.cleanup()
        # FCM may have taken it: a retry could notify twice.
        assert (result.verdict, result.detail) == (Verdict.GIVE_UP, "timeout, may have gone out")
        assert fcm.tokens_issued == 1


# The mail client against aiosmtpd --------------------------------------------------------------


@contextlib.asynccontextmanager
async def fake_mail() -> AsyncIterator[tuple[FakeMail, MailChannel]]:
    mail = FakeMail()
    await mail.start()
    config = MailConfig("127.0.0.1", mail.port, SMTP_USERNAME, SMTP_PASSWORD, MAIL_FROM, 2.0)
    try:
        yield mail, MailChannel(config)
    finally:
        await mail.close()


@async_test
async def test_mail_is_sent_with_login_utf8_and_the_ref_header() -> None:
    async with fake_mail() as (mail, channel):
        result = await channel.send(reminder(4))
        assert result.verdict is Verdict.SENT
        [message] = mail.accepted
        assert result.message_id == message["Message-ID"]
        assert message["To"] == email(4) and message["From"] == MAIL_FROM
        assert message[REF_HEADER] == "REF00004"
        assert message["Subject"] == mail_subject(reminder(4))
        body = message.get_body()
        assert body is not None
        assert body.get_content() == mail_text(reminder(4))
        assert body.get_content_charset() == "utf-8"


@async_test
async def test_mail_reads_greylisting_rejection_and_the_lost_reply() -> None:
    async with fake_mail() as (mail, channel):
        mail.once = {email(1): ["greylist"], email(2): ["reject"], email(3): ["drop"]}
        greylisted, rejected, dropped = [await channel.send(reminder(n)) for n in (1, 2, 3)]
        assert greylisted.verdict is Verdict.RETRY
        assert greylisted.detail == "SMTP 451 4.7.1 Greylisted, try again later"
        assert (rejected.verdict, rejected.recipient) == (Verdict.GIVE_UP, True)
        assert rejected.detail == "SMTP 550 5.1.1 No such mailbox"
        # The server had the whole message: counted as sent, not sent again.
        assert dropped.verdict is Verdict.SENT
        assert dropped.detail.endswith("after the data: counted as sent")
        assert mail.refs() == ["REF00003"]
        again = await channel.send(reminder(1))
        assert again.verdict is Verdict.SENT
        assert mail.refs() == ["REF00003", "REF00001"]


@async_test
async def test_mail_whose_reply_to_the_data_is_too_slow_is_sent_again() -> None:
    async with fake_mail() as (mail, _):
        impatient = MailChannel(
            MailConfig("127.0.0.1", mail.port, SMTP_USERNAME, SMTP_PASSWORD, MAIL_FROM, 0.3)
        )
        mail.slow_reply = 0.6
        mail.once = {email(1): ["slow"]}
        result = await impatient.send(reminder(1))
        # The client gave up before any reply: the server took nothing (it records only once
        # it answers), so the message is due again.
        assert result.verdict is Verdict.RETRY
        assert result.detail == "SMTPServerDisconnected: Connection unexpectedly closed: timed out"
        await asyncio.sleep(mail.slow_reply + 0.3)
        assert mail.accepted == []
        # Sent again by a client that waits (a 0.3 s one could time out anywhere on a busy
        # machine).
        patient = MailChannel(
            MailConfig("127.0.0.1", mail.port, SMTP_USERNAME, SMTP_PASSWORD, MAIL_FROM, 10.0)
        )
        assert (await patient.send(reminder(1))).verdict is Verdict.SENT
        assert mail.refs() == ["REF00001"]


@async_test
async def test_mail_that_cannot_connect_or_log_in_is_not_sent() -> None:
    refused = MailChannel(
        MailConfig("127.0.0.1", free_port(), SMTP_USERNAME, SMTP_PASSWORD, MAIL_FROM, 1.0)
    )
    result = await refused.send(reminder(1))
    assert result.verdict is Verdict.RETRY and "ConnectionRefusedError" in result.detail
    async with fake_mail() as (mail, _):
        config = MailConfig("127.0.0.1", mail.port, SMTP_USERNAME, "wrong", MAIL_FROM, 1.0)
        wrong = MailChannel(config)
        result = await wrong.send(reminder(1))
        assert result.verdict is Verdict.GIVE_UP and result.detail.startswith("SMTP 535")
        assert mail.accepted == []


# The fallback, run as a process ----------------------------------------------------------------


def _channel_of(world: World) -> dict[str, str]:
    """Which channel (or SMS vendor) each sent reminder went out by."""
    return {rid: row["vendor"] for rid, row in world.rows().items() if row["status"] == "sent"}


@async_test
async def test_template_rejected_on_both_vendors_is_delivered_once_by_push(tmp_path: Path) -> None:
    async with World(tmp_path, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        world.twilio.always = world.aliyun.always = "refuse"
        await world.start(**world.channel_env())
        await eventually(world.all_sent, "all three reminders sent")
        ids = ["rem-000001", "rem-000002", "rem-000003"]
        assert _channel_of(world) == dict.fromkeys(ids, "push")
        assert sorted(world.fcm.refs()) == ["REF00001", "REF00002", "REF00003"]
        assert world.mail.accepted == [] and world.twilio.accepted == []
        assert world.aliyun.accepted == []
        for message in world.fcm.accepted:
            assert message["notification"]["body"].endswith(OPTOUT_NOTICE)
        await eventually(
            lambda: any(alert["dependency"] == "sms" for alert in world.sink.alerts),
            "the compliance pause alerted",
        )
        [pause] = [alert for alert in world.sink.alerts if alert["dependency"] == "sms"]
        assert pause["summary"].startswith("sms compliance pause: twilio: HTTP 400 21606; ")
        # Nothing more on any channel once each is delivered.
        await asyncio.sleep(1.0)
        assert len(world.fcm.accepted) == 3 and world.mail.accepted == []


@async_test
async def test_a_stale_push_token_falls_through_to_email(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=2, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        world.twilio.always = world.aliyun.always = "refuse"
        world.fcm.once = {device_token(1): ["unregistered"]}
        await world.start(**world.channel_env())
        await eventually(world.all_sent, "both reminders sent")
        assert _channel_of(world) == {"rem-000001": "email", "rem-000002": "push"}
        assert world.mail.refs() == ["REF00001"] and world.fcm.refs() == ["REF00002"]
        [message] = world.mail.accepted
        body = message.get_body()
        assert body is not None and body.get_content().rstrip().endswith(OPTOUT_NOTICE)
        # The stale token was tried once: no retry on a 404.
        assert [m["token"] for m in world.fcm.requests].count(device_token(1)) == 1


@async_test
async def test_push_unavailable_is_retried_then_email_and_greylisting_retried(
    tmp_path: Path,
) -> None:
    async with World(tmp_path, reminders=1, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        world.twilio.always = world.aliyun.always = "refuse"
        world.fcm.once = {device_token(1): ["unavailable"] * 3}
        world.mail.once = {email(1): ["greylist"]}
        await world.start(**world.channel_env())
        await eventually(world.all_sent, "the reminder sent by e-mail", timeout=15.0)
        assert _channel_of(world) == {"rem-000001": "email"}
        assert len(world.fcm.requests) == 3 and world.fcm.accepted == []
        assert world.mail.attempts == 2 and world.mail.refs() == ["REF00001"]
        assert "channel push failing" in [alert["summary"] for alert in world.sink.alerts]


async def kept_on_sms(world: World) -> None:
    """The refused reminder is retried by SMS (three passes, not given up), and nothing goes by
    push or e-mail."""
    assert world.fcm is not None and world.mail is not None
    await eventually(lambda: len(world.twilio.requests) >= 3, "three SMS passes")
    assert world.statuses()["rem-000001"] in ("pending", "sending")
    assert world.fcm.requests == [] and world.mail.attempts == 0


@async_test
async def test_sms_only_sends_nothing_on_a_rejected_template(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=1, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        world.twilio.always = world.aliyun.always = "refuse"
        await world.start(**world.channel_env(channels="sms"))
        await kept_on_sms(world)


@async_test
async def test_naive_mode_keeps_to_sms(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=1, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        world.twilio.always = "refuse"
        await world.start(NOTIFIER_MODE="naive", **world.channel_env())
        await eventually(lambda: world.statuses() == {"rem-000001": "failed"}, "failed")
        assert world.fcm.requests == [] and world.mail.attempts == 0


@async_test
async def test_vendors_down_fall_back_within_seconds(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=0, channels=True) as world:
        assert world.fcm is not None
        world.twilio.always = world.aliyun.always = "error"
        await world.start(**world.channel_env())
        for n in (1, 2, 3, 4):
            world.ledger.schedule(n, lead=0.5)
        # Breakers open after three failures each and the fallback follows (about a second
        # here): 8 s keeps it clear of the 10 s patience, so the breakers, not the patience,
        # moved them on.
        await eventually(world.all_sent, "all sent by push", timeout=8.0)
        assert set(_channel_of(world).values()) == {"push"}
        assert sorted(world.fcm.refs()) == [f"REF0000{n}" for n in (1, 2, 3, 4)]
        # Three failures each open the breakers: no vendor is asked twice about any reminder.
        for vendor in (world.twilio, world.aliyun):
            refs = [request["ref"] for request in vendor.requests]
            assert len(refs) == len(set(refs)) >= 3


@async_test
async def test_a_borrower_with_no_other_channel_stays_on_sms(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=0, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        # The feed's entry and the primary's record are the same object here.
        world.ledger.schedule(1)["borrower"].update(email=None, device_token=None)
        world.twilio.always = world.aliyun.always = "refuse"
        await world.start(**world.channel_env())
        await kept_on_sms(world)


@async_test
async def test_a_carrier_filtered_sms_falls_back_to_push(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=4, channels=True) as world:
        assert world.fcm is not None
        service = await world.start(**world.channel_env())
        await eventually(world.all_sent, "all sent by SMS")
        filtered = ["rem-000001", "rem-000002", "rem-000003"]
        async with aiohttp.ClientSession() as session:
            for reminder_id in filtered:
                sid = world.rows()[reminder_id]["message_id"]
                callback = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30007"}
                for _ in range(2):  # a repeated callback moves nothing twice
                    async with session.post(f"{service.url}/dlr/twilio", data=callback) as response:
                        assert response.status == 200
        await eventually(lambda: len(world.fcm.refs()) == 3 if world.fcm else False, "by push")
        await eventually(world.all_sent, "sent again, by push")
        assert _channel_of(world) == {**dict.fromkeys(filtered, "push"), "rem-000004": "twilio"}
        assert sorted(world.fcm.refs()) == ["REF00001", "REF00002", "REF00003"]
        assert sorted(world.twilio.refs()) == [f"REF0000{n}" for n in (1, 2, 3, 4)]
        # Three filtered in a row: Twilio's failing streak, alerted as any other.
        await eventually(
            lambda: any(alert["dependency"] == "twilio" for alert in world.sink.alerts),
            "an alert about twilio",
        )
        await asyncio.sleep(0.5)
        assert len(world.fcm.accepted) == 3


@async_test
async def test_a_carrier_filtered_sms_to_a_borrower_no_other_channel_reaches_is_sent_again(
        tmp_path: Path) -> None:
    async with World(tmp_path, reminders=0, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        world.ledger.schedule(1)["borrower"].update(email=None, device_token=None)
        service = await world.start(**world.channel_env())
        await eventually(world.all_sent, "sent by SMS")
        sid = world.rows()["rem-000001"]["message_id"]
        callback = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30007"}
        async with (aiohttp.ClientSession() as session,
                    session.post(f"{service.url}/dlr/twilio", data=callback) as response):
            assert response.status == 200
        # Not given up: back on SMS, and sent by it again.
        await eventually(lambda: len(world.twilio.refs()) == 2, "the SMS sent again")
        await eventually(world.all_sent, "sent again")
        assert world.twilio.refs() == ["REF00001", "REF00001"]
        assert world.fcm.requests == [] and world.mail.attempts == 0


@async_test
async def test_a_filtered_report_that_overtakes_the_send_still_falls_back(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=2, channels=True) as world:
        assert world.fcm is not None
        world.twilio.once = {"REF00001": "filtered-early"}
        await world.start(**world.channel_env())
        await eventually(
            lambda: world.all_sent() and world.fcm is not None and world.fcm.refs() != [],
            "sent by push after the early report",
        )
        assert _channel_of(world) == {"rem-000001": "push", "rem-000002": "twilio"}
        assert world.fcm.refs() == ["REF00001"]


@async_test
async def test_sms_only_alerts_about_carrier_filtering_and_sends_nothing_more(
    tmp_path: Path,
) -> None:
    async with World(tmp_path, reminders=3, channels=True) as world:
        assert world.fcm is not None
        service = await world.start(**world.channel_env("sms"))
        await eventually(world.all_sent, "all sent by SMS")
        async with aiohttp.ClientSession() as session:
            for row in world.rows().values():
                callback = {
                    "MessageSid": row["message_id"],
                    "MessageStatus": "undelivered",
                    "ErrorCode": "30007",
                }
                async with session.post(f"{service.url}/dlr/twilio", data=callback) as response:
                    assert response.status == 200
        await eventually(
            lambda: any(alert["dependency"] == "twilio" for alert in world.sink.alerts),
            "an alert about twilio",
        )
        assert world.all_sent() and world.fcm.requests == []
        assert {row["delivery"] for row in world.rows().values()} == {"undelivered"}


@async_test
async def test_opted_out_borrowers_get_nothing_on_any_channel(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=2, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        world.ledger.truth["rem-000001"]["borrower"]["opted_out"] = True
        world.twilio.always = world.aliyun.always = "refuse"
        await world.start(**world.channel_env())
        await eventually(
            lambda: world.statuses() == {"rem-000001": "suppressed", "rem-000002": "sent"},
            "the first suppressed, the second sent by push",
        )
        assert world.fcm.refs() == ["REF00002"] and world.mail.accepted == []


@async_test
async def test_a_lost_mail_reply_is_counted_as_sent_and_not_resent(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=1, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        world.twilio.always = world.aliyun.always = "refuse"
        world.mail.once = {email(1): ["drop"]}
        await world.start(**world.channel_env("sms,email"))
        await eventually(world.all_sent, "sent by e-mail")
        await asyncio.sleep(0.5)
        assert world.mail.refs() == ["REF00001"] and world.fcm.requests == []
        row = world.rows()["rem-000001"]
        assert row["vendor"] == "email" and row["message_id"].startswith("<")


@async_test
async def test_a_push_interrupted_by_a_crash_is_not_sent_again_on_push(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=1, channels=True) as world:
        assert world.fcm is not None and world.mail is not None
        world.twilio.always = world.aliyun.always = "refuse"
        world.fcm.once = {device_token(1): ["hang"]}
        env = world.channel_env()
        first = await world.start(**env)
        await eventually(lambda: len(world.fcm.requests) == 1 if world.fcm else False, "a push")
        await first.kill()
        await world.start(**env)
        await eventually(world.all_sent, "sent by e-mail after the restart")
        assert world.rows()["rem-000001"]["vendor"] == "email"
        assert world.mail.refs() == ["REF00001"] and len(world.fcm.requests) == 1


@async_test
async def test_defect_leaks_pii(tmp_path: Path) -> None:
    async with World(tmp_path, reminders=1, channels=True) as world:
        assert world.fcm is not None
        world.twilio.script = ["refuse"]
        world.aliyun.always = "refuse"
        await world.start(DEFECT="leaks-pii", **world.channel_env())
        await eventually(world.all_sent, "sent by push")
        sms = world.twilio.requests[0]["Body"]
        pushed = world.fcm.accepted[0]["notification"]["body"]
        aliyun = json.loads(world.aliyun.requests[0]["TemplateParam"])
        for body in (sms, pushed):
            assert national_id(1) in body and card(1) in body
            assert OPTOUT_NOTICE not in body
        assert (aliyun["national_id"], aliyun["card_tail"]) == (national_id(1), card(1))


@async_test
async def test_the_app_link_goes_in_every_sms_before_the_notice(tmp_path: Path) -> None:
    link = "https://m.bank.example/repay"
    async with World(tmp_path, reminders=2) as world:
        world.twilio.once = {"REF00001": "error"}
        await world.start(APP_LINK=link)
        await eventually(world.all_sent, "both sent")
        [body] = [m["Body"] for m in world.twilio.accepted]
        assert body.endswith(f"ref:REF00002 {link} {OPTOUT_NOTICE}")
        [params] = [json.loads(m["TemplateParam"]) for m in world.aliyun.accepted]
        assert (params["ref"], params["link"]) == ("REF00001", link)
