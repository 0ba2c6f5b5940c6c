"""The reference notifier's own calendar: a staged feed entry (remind_at null, a stage and the due
date) is scheduled on the compressed clock it is told (NOTIFYCHAOS_CLOCK_*), on the wall clock
without one, and on the wall clock whatever it is told with DEFECT=wall-calendar."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest

from examples.reminder_service.bank_calendar import WALL, Calendar
from examples.reminder_service.reminder import ReminderRecord
from examples.reminder_service.settings import ConfigError, Settings
from tests.examples.notifierkit import record, revise

SHANGHAI = timezone(timedelta(hours=8))
START = datetime(2030, 3, 1, tzinfo=UTC)
SPEED = 31 * 86_400 / 40
EPOCH = 1_900_000_000.0
MONTH = Calendar(epoch=EPOCH, speed=SPEED, start=START)
CLOCK_ENV = {"NOTIFYCHAOS_CLOCK_EPOCH": f"{EPOCH:.3f}", "NOTIFYCHAOS_CLOCK_SPEED": "66960",
             "NOTIFYCHAOS_CLOCK_START": "2030-03-01T00:00:00Z"}
BASE_ENV = {"PORT": "0", "LEDGER_URL": "http://127.0.0.1:1", "ALERT_URL": "http://127.0.0.1:1/a",
            "OUTBOX_PATH": "/nonexistent/outbox.sqlite3", "PUBLIC_URL": "http://127.0.0.1:2",
            "PRIMARY_VENDOR": "twilio", "TWILIO_BASE_URL": "http://127.0.0.1:3",
            "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": "+15005550006"}


def staged(days_before: int, due_date: str = "2030-03-05", at: str = "09:00") -> dict[str, Any]:
    """A staged feed entry as the ledger serves it (its as_of in the bank's zone)."""
    entry = revise(record(1), due_date=due_date, remind_at=None, send_by=None,
                   as_of="2030-03-01T08:00:00.000+08:00")
    entry["stage"] = {"days_before": days_before, "at": at}
    return entry


def test_a_compressed_calendar_inverts_its_clock() -> None:
    # Calendar time is start + (now - epoch) * speed: March 2, 00:00 UTC is one day in.
    assert MONTH.real(START + timedelta(days=1)) == pytest.approx(EPOCH + 86_400 / SPEED)
    assert WALL.real(START) == START.timestamp()


@pytest.mark.parametrize("days_before", [3, 1, 0])
def test_a_staged_entry_is_due_at_its_stage_s_local_time_on_the_compressed_calendar(
        days_before: int) -> None:
    parsed = ReminderRecord.from_ledger(staged(days_before), MONTH)

    local = datetime(2030, 3, 5 - days_before, 9, 0, tzinfo=SHANGHAI)
    assert parsed.remind_at.timestamp() == pytest.approx(
        EPOCH + (local - START).total_seconds() / SPEED)
    assert parsed.remind_at.utcoffset() == timedelta(hours=8)
    assert parsed.due_date == "2030-03-05"


def test_on_the_wall_clock_a_staged_entry_is_due_on_the_real_day() -> None:
    parsed = ReminderRecord.from_ledger(staged(3))

    assert parsed.remind_at == datetime(2030, 3, 2, 9, 0, tzinfo=SHANGHAI)


def test_an_entry_with_its_remind_at_keeps_it_whatever_the_calendar() -> None:
    entry = record(1, lead=2.0)

    assert ReminderRecord.from_ledger(entry, MONTH) == ReminderRecord.from_ledger(entry)


@pytest.mark.parametrize(("change", "message"), [
    ({"stage": None}, "'stage' is not an object"),
    ({"stage": {"days_before": -1, "at": "09:00"}}, "'stage.days_before' is not an integer"),
    ({"stage": {"days_before": True, "at": "09:00"}}, "'stage.days_before' is not an integer"),
    ({"stage": {"days_before": 1, "at": "9am"}}, "'at' is not in the contract's format"),
    ({"stage": {"days_before": 1}}, "'at' is not a non-empty string"),
])
def test_an_off_contract_stage_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReminderRecord.from_ledger({**staged(1), **change}, MONTH)


def test_an_entry_with_neither_remind_at_nor_a_stage_is_refused() -> None:
    entry = staged(1)
    del entry["stage"]

    with pytest.raises(ValueError, match="'remind_at' is not a non-empty string"):
        ReminderRecord.from_ledger(entry, MONTH)


def test_the_notifier_reads_the_compressed_clock_it_is_told() -> None:
    assert Settings.from_env({**BASE_ENV, **CLOCK_ENV}).calendar == MONTH
    assert Settings.from_env(BASE_ENV).calendar == WALL


def test_with_the_wall_calendar_defect_it_ignores_the_clock_it_is_told() -> None:
    told = Settings.from_env({**BASE_ENV, **CLOCK_ENV, "DEFECT": "wall-calendar"})

    assert told.calendar == WALL
    assert ReminderRecord.from_ledger(staged(0), told.calendar).remind_at == datetime(
        2030, 3, 5, 9, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize("change", [
    {"NOTIFYCHAOS_CLOCK_SPEED": ""},
    {"NOTIFYCHAOS_CLOCK_SPEED": "fast"},
    {"NOTIFYCHAOS_CLOCK_SPEED": "0"},
    {"NOTIFYCHAOS_CLOCK_START": "2030-03-01T00:00:00"},
    {"NOTIFYCHAOS_CLOCK_START": "March"},
])
def test_a_partial_or_malformed_clock_is_a_config_error(change: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="NOTIFYCHAOS_CLOCK_"):
        Settings.from_env({**BASE_ENV, **CLOCK_ENV, **change})


def test_a_stage_s_time_of_day_is_read_in_the_feed_s_zone() -> None:
    # The same instant written at +00:00: 09:00 is then 09:00 UTC, eight hours later.
    entry = revise(staged(1), as_of="2030-03-01T00:00:00.000+00:00")

    parsed = ReminderRecord.from_ledger(entry)

    assert parsed.remind_at == datetime.combine(datetime(2030, 3, 4).date(), time(9), UTC)
