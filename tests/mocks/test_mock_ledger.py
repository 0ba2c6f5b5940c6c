"""The ledger mock: the admin API makes reminders owed; the pull API pages through the due ones."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest
from mockkit import WINDOW, Mocks

from harness.journal import ReminderOwed, read_journal

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def installment(n: int = 42) -> dict[str, str]:
    return {"loan_ref": f"ML-20240117-{n:04d}", "name": "王秀英", "phone": "+8613912345678",
            "amount": "5234.00", "due_date": "2026-12-05"}


def add(client: httpx.Client, mocks: Mocks, body: dict[str, str]) -> dict[str, Any]:
    response = client.post(f"{mocks.manifest.ledger_url}/admin/installments", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def page(client: httpx.Client, mocks: Mocks, **query: int) -> dict[str, Any]:
    response = client.get(f"{mocks.manifest.ledger_url}/v1/reminders/due", params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def end_cursor(client: httpx.Client, mocks: Mocks) -> int:
    """Walk the pull API to its end; the cursor after every reminder owed so far."""
    cursor = 0
    while True:
        body = page(client, mocks, cursor=cursor, limit=500)
        cursor = int(body["next_cursor"])
        if not body["has_more"]:
            return cursor


def owed(mocks: Mocks) -> list[ReminderOwed]:
    return read_journal(mocks.journal_dir).of(ReminderOwed)


def test_healthz_answers_ok(client: httpx.Client, mocks: Mocks) -> None:
    response = client.get(f"{mocks.manifest.ledger_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_new_installment_is_created_and_journaled_as_owed(
        client: httpx.Client, mocks: Mocks) -> None:
    created = add(client, mocks, installment(1))

    assert re.fullmatch(r"rem-\d{6}", created["reminder_id"])
    assert re.fullmatch(r"[A-Z0-9]{8}", created["ref"])
    [event] = [e for e in owed(mocks) if e.reminder_id == created["reminder_id"]]
    assert event.ref == created["ref"]
    assert (event.loan_ref, event.name, event.phone, event.amount, event.due_date) == (
        "ML-20240117-0001", "王秀英", "+8613912345678", "5234.00", "2026-12-05")
    assert event.source == "mocks"
    assert event.send_by - event.remind_at == pytest.approx(WINDOW)


def test_due_reminder_carries_the_contract_fields(client: httpx.Client, mocks: Mocks) -> None:
    cursor = end_cursor(client, mocks)
    created = add(client, mocks, installment(2))

    body = page(client, mocks, cursor=cursor)

    assert body["next_cursor"] == cursor + 1
    assert body["has_more"] is False
    [reminder] = body["reminders"]
    assert reminder["reminder_id"] == created["reminder_id"]
    assert reminder["ref"] == created["ref"]
    assert reminder["loan_ref"] == "ML-20240117-0002"
    assert reminder["borrower"] == {"name": "王秀英", "phone": "+8613912345678"}
    assert reminder["installment"] == {
        "amount": "5234.00", "currency": "CNY", "due_date": "2026-12-05"}
    assert RFC3339_MS.match(reminder["remind_at"]), reminder["remind_at"]
    assert RFC3339_MS.match(reminder["send_by"]), reminder["send_by"]
    remind_at = datetime.fromisoformat(reminder["remind_at"])
    send_by = datetime.fromisoformat(reminder["send_by"])
    assert (send_by - remind_at).total_seconds() == pytest.approx(WINDOW, abs=0.002)


def test_pages_follow_the_cursor_oldest_first(client: httpx.Client, mocks: Mocks) -> None:
    cursor = end_cursor(client, mocks)
    refs = [add(client, mocks, installment(10 + n))["ref"] for n in range(5)]

    seen: list[str] = []
    pages: list[tuple[int, bool]] = []
    while True:
        body = page(client, mocks, cursor=cursor, limit=2)
        seen += [r["ref"] for r in body["reminders"]]
        pages.append((len(body["reminders"]), body["has_more"]))
        assert body["next_cursor"] == cursor + len(body["reminders"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break

    assert pages == [(2, True), (2, True), (1, False)]
    assert seen == refs


def test_an_older_cursor_returns_reminders_again(client: httpx.Client, mocks: Mocks) -> None:
    cursor = end_cursor(client, mocks)
    ref = add(client, mocks, installment(20))["ref"]

    first = page(client, mocks, cursor=cursor)
    assert [r["ref"] for r in first["reminders"]] == [ref]
    assert page(client, mocks, cursor=first["next_cursor"])["reminders"] == []
    again = page(client, mocks, cursor=cursor)
    assert [r["ref"] for r in again["reminders"]] == [ref]


def test_cursor_and_limit_default_to_the_first_hundred(
        client: httpx.Client, mocks: Mocks) -> None:
    for n in range(101 - end_cursor(client, mocks)):
        add(client, mocks, installment(100 + n))

    body = page(client, mocks)

    assert len(body["reminders"]) == 100
    assert body["next_cursor"] == 100
    assert body["has_more"] is True


@pytest.mark.parametrize("query", [
    {"cursor": "abc"}, {"limit": "ten"}, {"cursor": "-1"}, {"limit": "0"}, {"limit": "501"},
], ids=["cursor-not-int", "limit-not-int", "cursor-negative", "limit-zero", "limit-over-500"])
def test_bad_query_is_400_with_error(
        client: httpx.Client, mocks: Mocks, query: dict[str, str]) -> None:
    response = client.get(f"{mocks.manifest.ledger_url}/v1/reminders/due", params=query)

    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert response.json()["error"]


@pytest.mark.parametrize("content", [
    b"not json",
    b'{"loan_ref": "ML-1"}',
    {**installment(), "phone": "13912345678"},
    {**installment(), "amount": "5234"},
    {**installment(), "due_date": "05/12/2026"},
    {**installment(), "extra": "field"},
], ids=["not-json", "missing-fields", "phone-not-e164", "amount-no-cents", "due-date-format",
        "unknown-field"])
def test_bad_installment_is_400_and_owes_nothing(
        client: httpx.Client, mocks: Mocks, content: bytes | dict[str, str]) -> None:
    before = len(owed(mocks))
    url = f"{mocks.manifest.ledger_url}/admin/installments"
    if isinstance(content, bytes):
        response = client.post(url, content=content,
                               headers={"Content-Type": "application/json"})
    else:
        response = client.post(url, json=content)

    assert response.status_code == 400
    assert response.json()["error"]
    assert len(owed(mocks)) == before
