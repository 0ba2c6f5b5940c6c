"""The ledger mock's pull API: ticks schedule reminders; the change feed pages through their
records; the primary record is the latest version; the truth is journaled."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from mockkit import LEAD, WINDOW, Mocks, feed, feed_entries, primary, tick

from harness.journal import ReminderScheduled, read_journal

BANK_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+08:00$")
SHANGHAI = timezone(timedelta(hours=8))


def scheduled(mocks: Mocks) -> list[ReminderScheduled]:
    return read_journal(mocks.journal_dir).of(ReminderScheduled)


def truth_of(mocks: Mocks, reminder_id: str) -> ReminderScheduled:
    [event] = [e for e in scheduled(mocks) if e.reminder_id == reminder_id]
    return event


def end_cursor(client: httpx.Client, mocks: Mocks) -> int:
    """The cursor after every entry the feed holds so far."""
    cursor = 0
    while True:
        body = feed(client, mocks, cursor)
        cursor = int(body["next_cursor"])
        if not body["has_more"]:
            return cursor


def epoch(text: str) -> float:
    """A wire time as a notifier parses it."""
    return datetime.fromisoformat(text).timestamp()


def test_healthz_answers_ok(client: httpx.Client, mocks: Mocks) -> None:
    response = client.get(f"{mocks.manifest.ledger_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_tick_schedules_a_reminder_and_journals_its_truth(
        client: httpx.Client, mocks: Mocks) -> None:
    created = tick(client, mocks)

    assert created.keys() == {"reminder_id", "ref"}
    number = re.fullmatch(r"ML-(\d{6})-\d{3}", created["reminder_id"])
    assert number, created
    assert re.fullmatch(r"[A-Z0-9]{8}", created["ref"])
    event = truth_of(mocks, created["reminder_id"])
    assert event.source == "mocks"
    assert event.ref == created["ref"]
    assert event.loan_id == f"ML-{number.group(1)}"
    assert event.borrower_id == f"B{number.group(1)}"
    assert re.fullmatch(r"\+86\d{11}", event.phone)
    assert event.name
    assert re.fullmatch(r"\d+\.\d{2}", event.amount)
    assert Decimal("2000.00") <= Decimal(event.amount) <= Decimal("20000.00")
    today = datetime.fromtimestamp(event.t, SHANGHAI).date()
    assert 3 <= (date.fromisoformat(event.due_date) - today).days <= 10
    assert event.remind_at - event.t == pytest.approx(LEAD, abs=1e-6)
    assert event.send_by - event.remind_at == pytest.approx(WINDOW, abs=1e-6)


def test_a_feed_entry_is_the_whole_record_in_the_banks_time_zone(
        client: httpx.Client, mocks: Mocks) -> None:
    cursor = end_cursor(client, mocks)
    created = tick(client, mocks)

    body = feed(client, mocks, cursor)

    assert body["next_cursor"] == cursor + 1
    assert body["has_more"] is False
    [entry] = body["changes"]
    truth = truth_of(mocks, created["reminder_id"])
    assert entry == {
        "reminder_id": created["reminder_id"],
        "ref": created["ref"],
        "version": 1,
        "status": "scheduled",
        "loan_id": truth.loan_id,
        "borrower": {"borrower_id": truth.borrower_id, "name": truth.name,
                     "phone": truth.phone, "email": truth.email or None,
                     "device_token": truth.device_token or None,
                     "national_id": truth.national_id, "account": truth.account or None,
                     "opted_out": truth.opted_out},
        "installment": {"number": int(created["reminder_id"].rsplit("-", 1)[1]),
                        "amount": truth.amount,
                        "currency": "CNY", "due_date": truth.due_date},
        "remind_at": entry["remind_at"],
        "send_by": entry["send_by"],
        "as_of": entry["as_of"],
    }
    assert len(truth.national_id) == 18 and len(truth.account) == 16 and "@" in truth.email
    for key in ("remind_at", "send_by", "as_of"):
        assert BANK_TIME.match(entry[key]), entry[key]
    # The journal's times are exactly what a notifier parses from the wire.
    assert epoch(entry["remind_at"]) == truth.remind_at
    assert epoch(entry["send_by"]) == truth.send_by
    assert epoch(entry["as_of"]) == truth.t
    assert datetime.fromisoformat(entry["remind_at"]) > datetime.now(SHANGHAI)


def test_pages_follow_the_cursor_oldest_first(client: httpx.Client, mocks: Mocks) -> None:
    cursor = end_cursor(client, mocks)
    ids = [tick(client, mocks)["reminder_id"] for _ in range(5)]

    seen: list[str] = []
    pages: list[tuple[int, bool]] = []
    while True:
        body = feed(client, mocks, cursor, limit=2)
        seen += [entry["reminder_id"] for entry in body["changes"]]
        pages.append((len(body["changes"]), body["has_more"]))
        assert body["next_cursor"] == cursor + len(body["changes"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break

    assert pages == [(2, True), (2, True), (1, False)]
    assert seen == ids


def test_an_older_cursor_returns_entries_again(client: httpx.Client, mocks: Mocks) -> None:
    cursor = end_cursor(client, mocks)
    reminder_id = tick(client, mocks)["reminder_id"]

    first = feed(client, mocks, cursor)
    assert [e["reminder_id"] for e in first["changes"]] == [reminder_id]
    assert feed(client, mocks, first["next_cursor"])["changes"] == []
    again = feed(client, mocks, cursor)
    assert again["changes"] == first["changes"]


def test_cursor_and_limit_default_to_the_first_hundred(
        client: httpx.Client, mocks: Mocks) -> None:
    for _ in range(101 - end_cursor(client, mocks)):
        tick(client, mocks)

    body = client.get(f"{mocks.manifest.ledger_url}/v1/reminders/changes").json()

    assert len(body["changes"]) == 100
    assert body["next_cursor"] == 100
    assert body["has_more"] is True


def test_the_primary_record_is_the_feeds_latest_version(
        client: httpx.Client, mocks: Mocks) -> None:
    cursor = end_cursor(client, mocks)
    reminder_id = tick(client, mocks)["reminder_id"]

    [entry] = feed_entries(client, mocks, cursor)

    assert primary(client, mocks, reminder_id) == entry


def test_an_unknown_reminder_is_404(client: httpx.Client, mocks: Mocks) -> None:
    response = client.get(f"{mocks.manifest.ledger_url}/v1/reminders/ML-999999-001")

    assert response.status_code == 404
    assert response.json()["error"]


def test_reminder_ids_and_refs_are_unique_and_borrowers_stable(
        client: httpx.Client, mocks: Mocks) -> None:
    created = [tick(client, mocks) for _ in range(50)]

    assert len({c["reminder_id"] for c in created}) == 50
    assert len({c["ref"] for c in created}) == 50
    people: dict[str, tuple[str, str]] = {}
    for event in scheduled(mocks):
        person = people.setdefault(event.borrower_id, (event.name, event.phone))
        assert person == (event.name, event.phone), event.borrower_id  # no changes configured


@pytest.mark.parametrize("query", [
    {"cursor": "abc"}, {"limit": "ten"}, {"cursor": "-1"}, {"limit": "0"}, {"limit": "501"},
], ids=["cursor-not-int", "limit-not-int", "cursor-negative", "limit-zero", "limit-over-500"])
def test_bad_query_is_400_with_error(
        client: httpx.Client, mocks: Mocks, query: dict[str, str]) -> None:
    response = client.get(f"{mocks.manifest.ledger_url}/v1/reminders/changes", params=query)

    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert response.json()["error"]


@pytest.mark.parametrize("content", [b"{}", b"", b"  "], ids=["empty-object", "no-body", "blank"])
def test_a_tick_takes_no_body_or_an_empty_object(
        client: httpx.Client, mocks: Mocks, content: bytes) -> None:
    response = client.post(f"{mocks.manifest.ledger_url}/admin/ticks", content=content)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("content", [b"not json", b'{"name": "x"}', b"[]"],
                         ids=["not-json", "fields", "array"])
def test_a_tick_with_a_body_is_400_and_schedules_nothing(
        client: httpx.Client, mocks: Mocks, content: bytes) -> None:
    before = len(scheduled(mocks))

    response = client.post(f"{mocks.manifest.ledger_url}/admin/ticks", content=content,
                           headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"]
    assert len(scheduled(mocks)) == before
