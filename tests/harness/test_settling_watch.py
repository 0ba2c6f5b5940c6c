"""The drain's cheap watch: from the lines appended since its last look, it says no while a
reminder is still to fall due or the mocks are busy, and never says no where the whole
journal's judgement says the run is decided."""

from __future__ import annotations

import json
from pathlib import Path

from harness.journal import (
    ComponentReady,
    Event,
    JournalWriter,
    LoadStarted,
    ReminderChanged,
    RunStarted,
)
from harness.settling import QUIET, Watch, decided
from tests.harness.journals import SCENARIO, T0, call, owed, sent


def write(folder: Path, *events: Event) -> Path:
    """Append `events` to the harness's file of a run still going (its start first)."""
    journal = folder / "journal"
    writer = JournalWriter(journal, "harness")
    if writer.path.stat().st_size == 0:
        for event in (RunStarted(t=T0, scenario=SCENARIO),
                      ComponentReady(t=T0, component="toxiproxy"), LoadStarted(t=T0, pid=1)):
            writer.write(event)
    for event in events:
        writer.write(event)
    writer.close()
    return journal


def test_nothing_scheduled_yet_is_not_decided(tmp_path: Path) -> None:
    watch = Watch(write(tmp_path))

    assert not watch.may_be_decided(SCENARIO, T0 + 1000)


def test_it_waits_for_the_last_reminder_to_fall_due_and_the_mocks_to_be_quiet(
        tmp_path: Path) -> None:
    journal = write(tmp_path, owed("AAAAAAAA", 1), sent("AAAAAAAA", 1.5))
    watch = Watch(journal)
    assert not watch.may_be_decided(SCENARIO, T0 + 1.5 + QUIET - 0.5)  # a send just now
    assert watch.may_be_decided(SCENARIO, T0 + 1.5 + QUIET + 0.1)

    # Read on from where it was: a later reminder, then a vendor call, hold it up again.
    write(tmp_path, owed("BBBBBBBB", 40, scheduled=12))
    assert not watch.may_be_decided(SCENARIO, T0 + 30)
    write(tmp_path, sent("BBBBBBBB", 41), call(45, "accepted"))
    assert not watch.may_be_decided(SCENARIO, T0 + 45 + QUIET - 0.5)
    assert watch.may_be_decided(SCENARIO, T0 + 45 + QUIET + 0.1)


def test_where_the_journal_is_decided_the_watch_never_says_no(tmp_path: Path) -> None:
    journal = write(tmp_path, owed("AAAAAAAA", 1), sent("AAAAAAAA", 1.5),
                    owed("BBBBBBBB", 3, scheduled=0.5),
                    ReminderChanged(t=T0 + 1, reminder_id="rem-BBBBBBBB", change="repaid",
                                    amount="0.00"))
    watch = Watch(journal)
    for now in (T0 + 2, T0 + 5, T0 + 9.4, T0 + 9.6, T0 + 10, T0 + 30):
        if decided(journal, SCENARIO, now):
            assert watch.may_be_decided(SCENARIO, now), now
    assert decided(journal, SCENARIO, T0 + 10)


def test_a_line_it_cannot_read_is_left_to_the_judgement(tmp_path: Path) -> None:
    journal = write(tmp_path, owed("AAAAAAAA", 1), sent("AAAAAAAA", 1.5))
    with (journal / "mocks.jsonl").open("ab") as file:
        file.write(b'{"kind": "send.recorded", "t": "soon"}\nnot json\n')
    watch = Watch(journal)

    assert watch.may_be_decided(SCENARIO, T0 + 1.5 + QUIET + 0.1)
    assert not decided(journal, SCENARIO, T0 + 1.5 + QUIET + 0.1)  # the reader refuses it


def test_a_line_spelt_with_spaces_is_parsed_whole(tmp_path: Path) -> None:
    journal = write(tmp_path, owed("AAAAAAAA", 1), sent("AAAAAAAA", 1.5))
    late = sent("AAAAAAAA", 20).model_dump(mode="json")
    with (journal / "hand.jsonl").open("w", encoding="utf-8") as file:
        file.write(json.dumps(late) + "\n")  # json.dumps puts a space after each colon
    watch = Watch(journal)

    assert not watch.may_be_decided(SCENARIO, T0 + 1.5 + QUIET + 0.1)
    assert watch.may_be_decided(SCENARIO, T0 + 20 + QUIET + 0.1)
