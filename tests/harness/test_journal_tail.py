"""Reading a growing journal: whole new lines only, however they are spelt, and a line's kind
told without parsing it."""

from __future__ import annotations

import json
from pathlib import Path

from harness.journal import JournalWriter, ReminderScheduled, SendRecorded, VendorCall
from harness.tail import JournalTail, kind_of
from tests.harness.journals import call, owed, sent


def test_a_line_s_kind_is_read_as_the_journal_writer_spells_it() -> None:
    assert kind_of(b'{"t":1.0,"source":"mocks","seq":3,"kind":"vendor.call","a":{"kind":"x"}}'
                   ) == "vendor.call"
    assert kind_of(b'{"t": 1.0, "kind": "vendor.call"}') is None
    assert kind_of(b'{"t":1.0,"kind":"torn') is None


def test_whole_new_lines_are_read_however_they_are_spelt(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "mocks")
    for event in (owed("AAAAAAAA", 1), call(1.2, "accepted"), sent("AAAAAAAA", 1.5)):
        writer.write(event)
    writer.close()
    with (tmp_path / "hand.jsonl").open("wb") as file:
        # Spelt with spaces, as json.dumps does by default.
        file.write(json.dumps(call(2.0, "accepted").model_dump(mode="json")).encode() + b"\n")
        file.write(b'{"t":3.0,"kind":"vendor.call"')  # not yet a whole line

    everything = JournalTail(tmp_path)

    assert [type(event) for event in everything.read()] == [VendorCall, ReminderScheduled,
                                                            VendorCall, SendRecorded]
    assert everything.read() == []
