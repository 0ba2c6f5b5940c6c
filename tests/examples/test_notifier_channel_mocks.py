"""The reference notifier's push and e-mail clients against the project's own mocks (the real mock
process serving the push service and the mail server): the ledger's records read strictly, each
message as the mock journals it, and each mock fault as the client reads it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from examples.reminder_service.channels import Verdict
from examples.reminder_service.mail import MailChannel
from examples.reminder_service.messages import mail_subject, mail_text, push_text, push_title
from examples.reminder_service.push import PushChannel
from examples.reminder_service.reminder import OPTOUT_NOTICE, Reminder, ReminderRecord
from examples.reminder_service.settings import MailConfig, PushConfig
from harness.journal import SendRecorded, read_journal
from harness.processes import poll_until
from mocks.bank import Population
from mocks.manifest import ChannelEndpoint, MocksConfig
from tests.examples.notifierkit import async_test
from tests.mocks.mockkit import CONTROL, TOKEN, serving

REMINDERS = 16


@dataclass(frozen=True)
class Served:
    push: ChannelEndpoint
    email: ChannelEndpoint
    journal_dir: Path
    reminders: tuple[Reminder, ...]
    """The messages for the reminders the mock ledger scheduled, read from its feed."""

    def sends(self, channel: str, to: str) -> list[SendRecorded]:
        return [
            send
            for send in read_journal(self.journal_dir).of(SendRecorded)
            if send.channel == channel and send.to.lower() == to.lower()
        ]


def _wait(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """`check`'s first truthy value (the mock journals a send a moment after it answers)."""
    found = poll_until(lambda: check() or None, timeout=timeout, interval=0.05)
    assert found is not None, f"timed out after {timeout}s waiting for {what}"
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("channels")
    population = Population(borrowers=40, app_users=0.8, stale_tokens=0.4)
    config = MocksConfig(seed=5, journal_dir=str(workdir / "journal"), population=population,
                         token=TOKEN, vendors={}, channels=["push", "email"], run_dir=str(workdir))
    with serving(workdir, config) as mocks:
        manifest = mocks.manifest
        with httpx.Client(timeout=5, headers=CONTROL) as client:
            for _ in range(REMINDERS):
                client.post(f"{manifest.ledger_url}/admin/ticks").raise_for_status()
            page = client.get(f"{manifest.ledger_url}/v1/reminders/changes",
                              params={"cursor": 0, "limit": 500}).json()
        # The strict reader takes every record the mock ledger serves.
        records = [ReminderRecord.from_ledger(change) for change in page["changes"]]
        latest = {record.reminder_id: record for record in records}
        yield Served(manifest.channels["push"], manifest.channels["email"],
                     Path(config.journal_dir), tuple(r.message() for r in latest.values()))
    assert "Traceback" not in mocks.log.read_text(encoding="utf-8", errors="replace")


def _mail(served: Served, timeout: float = 5.0) -> MailChannel:
    endpoint = served.email
    host, port = endpoint.url.removeprefix("smtp://").rsplit(":", 1)
    config = MailConfig(host, int(port), endpoint.credentials["username"],
                        endpoint.credentials["password"], endpoint.values["from"], timeout)
    return MailChannel(config)


class _Faults:
    def __init__(self, endpoint: ChannelEndpoint) -> None:
        self._url = endpoint.control_url

    def __enter__(self) -> _Faults:
        return self

    def set(self, **values: object) -> None:
        with httpx.Client(timeout=5, headers=CONTROL) as client:
            client.put(self._url, json=values).raise_for_status()

    def __exit__(self, *_: object) -> None:
        with httpx.Client(timeout=5, headers=CONTROL) as client:
            client.delete(self._url).raise_for_status()


def test_the_ledgers_records_carry_the_contacts(served: Served) -> None:
    with_app = [r for r in served.reminders if r.device_token is not None]
    assert with_app and len(with_app) < len(served.reminders)
    assert all(r.email is not None and len(r.card_tail) == 4 for r in served.reminders)


@async_test
async def test_push_through_the_mock_is_journaled_and_stale_tokens_refused(
    served: Served,
) -> None:
    endpoint = served.push
    values = endpoint.values
    config = PushConfig(endpoint.url, values["project"], values["credentials_file"])
    results: dict[str, tuple[Reminder, Verdict, bool]] = {}
    async with aiohttp.ClientSession() as session:
        push = PushChannel(config, session, timeout=5.0)
        for reminder in served.reminders:
            if reminder.device_token is not None:
                result = await push.send(reminder)
                results[reminder.device_token] = (reminder, result.verdict, result.recipient)
        verdicts = {(verdict, recipient) for _, verdict, recipient in results.values()}
        assert verdicts == {(Verdict.SENT, False), (Verdict.GIVE_UP, True)}, "live and stale"
        sent = [r for r, verdict, _ in results.values() if verdict is Verdict.SENT]
        for reminder in sent:
            assert reminder.device_token is not None
            [send] = _wait(lambda r=reminder: served.sends("push", r.device_token), "the push")
            assert send.body == f"{push_title()}\n{push_text(reminder)}"
            assert send.body.endswith(OPTOUT_NOTICE)
        with _Faults(endpoint) as faults:
            faults.set(unavailable=True)
            down = await push.send(sent[0])
            faults.set(unavailable=False, quota=True)
            quota = await push.send(sent[0])
        assert (down.verdict, down.detail) == (Verdict.RETRY, "HTTP 503 UNAVAILABLE")
        assert (quota.verdict, quota.detail) == (Verdict.RETRY, "HTTP 429 QUOTA_EXCEEDED")


@async_test
async def test_mail_through_the_mock_is_journaled_as_sent(served: Served) -> None:
    reminder = served.reminders[0]
    assert reminder.email is not None
    result = await _mail(served).send(reminder)
    assert result.verdict is Verdict.SENT
    [send] = _wait(lambda: served.sends("email", str(reminder.email)), "the e-mail")
    assert send.body.rstrip() == f"{mail_subject(reminder)}\n\n{mail_text(reminder)}".rstrip()
    assert send.body.rstrip().endswith(OPTOUT_NOTICE)


@async_test
async def test_greylisting_is_retried_until_it_passes(served: Served) -> None:
    reminder = served.reminders[1]
    assert reminder.email is not None
    with _Faults(served.email) as faults:
        faults.set(greylist=1.0)
        first = await _mail(served).send(reminder)
        assert (first.verdict, first.detail) == (
            Verdict.RETRY,
            "SMTP 451 4.7.1 Greylisted, try again later",
        )
        await asyncio.sleep(1.2)
        assert (await _mail(served).send(reminder)).verdict is Verdict.SENT
    assert len(_wait(lambda: served.sends("email", str(reminder.email)), "the e-mail")) == 1


@async_test
async def test_a_drop_after_data_counts_as_sent_once_and_a_slow_reply_is_sent_again(
    served: Served,
) -> None:
    dropped, slow = served.reminders[2], served.reminders[3]
    assert dropped.email is not None and slow.email is not None
    with _Faults(served.email) as faults:
        faults.set(drop_after_data=1.0)
        result = await _mail(served).send(dropped)
        assert result.verdict is Verdict.SENT
        assert result.detail.endswith("after the data: counted as sent")
        faults.set(drop_after_data=0.0, data_delay=1.0)
        gave_up = await _mail(served, timeout=0.3).send(slow)
        assert gave_up.verdict is Verdict.RETRY
    assert len(_wait(lambda: served.sends("email", str(dropped.email)), "the dropped one")) == 1
    await asyncio.sleep(1.5)  # past the delay: the message given up on was never taken
    assert served.sends("email", str(slow.email)) == []
