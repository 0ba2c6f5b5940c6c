"""The journal: per-source files, sequence numbers, merge in time order, survival of a torn line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import JournalError
from harness.journal import AlertReceived, JournalWriter, LoadFinished, read_journal


def test_sources_write_their_own_files_and_reading_merges_them_by_time(tmp_path: Path) -> None:
    mocks, harness = JournalWriter(tmp_path, "mocks"), JournalWriter(tmp_path, "harness")
    mocks.write(AlertReceived(t=3.0, body="late"))
    harness.write(LoadFinished(t=2.0, exit_code=0, requests=5, failures=0))
    mocks.write(AlertReceived(t=1.0, body="early"))
    mocks.close()
    harness.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["harness.jsonl", "mocks.jsonl"]
    events = read_journal(tmp_path).events
    assert [(e.t, e.source, e.seq) for e in events] == [
        (1.0, "mocks", 2), (2.0, "harness", 1), (3.0, "mocks", 1)]


def test_a_restarted_writer_continues_its_sequence(tmp_path: Path) -> None:
    first = JournalWriter(tmp_path, "mocks")
    first.write(AlertReceived(body="one"))
    first.close()
    second = JournalWriter(tmp_path, "mocks")
    assert second.write(AlertReceived(body="two")).seq == 2
    second.close()


def test_a_half_written_last_line_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "mocks")
    writer.write(AlertReceived(t=1.0, body="kept"))
    writer.close()
    with (tmp_path / "mocks.jsonl").open("a") as file:
        file.write('{"kind": "alert.rec')
    assert [e.body for e in read_journal(tmp_path).of(AlertReceived)] == ["kept"]


def test_damage_before_the_last_line_is_an_error_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "mocks.jsonl").write_text('{"kind": "nonsense"}\n{"kind": "alert.received", '
                                          '"body": "x"}\n')
    with pytest.raises(JournalError, match=r"mocks.jsonl:1: not a journal event"):
        read_journal(tmp_path)


def test_line_separators_inside_a_body_do_not_split_its_event(tmp_path: Path) -> None:
    # JSON leaves U+2028, U+2029 and U+0085 unescaped; only "\n" ends a journal line.
    writer = JournalWriter(tmp_path, "mocks")
    body = "line\u2028separator\u2029paragraph\x85next"
    writer.write(AlertReceived(t=1.0, body=body))
    writer.write(AlertReceived(t=2.0, body="after"))
    writer.close()
    assert [e.body for e in read_journal(tmp_path).of(AlertReceived)] == [body, "after"]


def test_a_last_line_cut_inside_a_character_is_a_torn_line(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "mocks")
    writer.write(AlertReceived(t=1.0, body="kept"))
    writer.close()
    with (tmp_path / "mocks.jsonl").open("ab") as file:
        file.write('{"kind": "alert.received", "body": "退'.encode()[:-1])
    assert [e.body for e in read_journal(tmp_path).of(AlertReceived)] == ["kept"]
