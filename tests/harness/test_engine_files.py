"""The scorer's engine reads a journal folder by the journal's rules (a torn last line, a seal,
a malformed line) and hands what it cannot promise to read as Python does to the pure scorer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.continuity import score
from harness.engine import MEMORY_LIMIT, Unsure, memory_limit, score_engine, score_folder
from harness.errors import JournalError
from harness.journal import read_journal, seal_journal
from tests.harness.journals import journal, owed, run_folder, sent


def _run(folder: Path, phone: str = "+8613800000001") -> Path:
    made = journal(owed("aaaaaaaa", 5.0, phone=phone), sent("aaaaaaaa", 5.5, to=phone),
                   owed("bbbbbbbb", 20.0, phone=phone), sent("bbbbbbbb", 35.0, to=phone),
                   sent("cccccccc", 40.0, to="+8613000000009"))
    return run_folder(folder, made) / "journal"


def _pure(journal_dir: Path) -> dict[str, object]:
    return score(read_journal(journal_dir)).model_dump()


def test_a_torn_last_line_is_left_out_as_reading_leaves_it_out(tmp_path: Path) -> None:
    journal_dir = _run(tmp_path)
    with (journal_dir / "harness.jsonl").open("a", encoding="utf-8") as file:
        file.write('{"t": 1000050.0, "kind": "send.rec')
    assert score_engine(journal_dir).model_dump() == _pure(journal_dir)


def test_a_sealed_journal_is_read_up_to_its_seal(tmp_path: Path) -> None:
    journal_dir = _run(tmp_path)
    seal_journal(journal_dir)
    late = sent("aaaaaaaa", 6.0).model_copy(update={"source": "harness", "seq": 99})
    with (journal_dir / "harness.jsonl").open("a", encoding="utf-8") as file:
        file.write(late.model_dump_json() + "\n")
    card = score_engine(journal_dir)
    assert card.model_dump() == _pure(journal_dir)
    assert card.duplicates == 0


def test_a_number_sql_could_read_otherwise_goes_to_the_pure_scorer(tmp_path: Path) -> None:
    journal_dir = _run(tmp_path, phone="+86１３８00000001")  # full-width digits
    with pytest.raises(Unsure):
        score_engine(journal_dir)
    assert score_folder(journal_dir, engine=True).model_dump() == _pure(journal_dir)


def test_a_malformed_line_is_the_error_reading_gives(tmp_path: Path) -> None:
    journal_dir = _run(tmp_path)
    lines = (journal_dir / "harness.jsonl").read_text(encoding="utf-8").splitlines()
    broken = json.loads(lines[4])
    assert broken["kind"] == "send.recorded"
    broken["handset"] = "lost in space"
    lines[4] = json.dumps(broken, ensure_ascii=False)
    (journal_dir / "harness.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(JournalError, match=r"harness\.jsonl:5: not a journal event"):
        score_folder(journal_dir, engine=True)


def test_a_bulky_line_spelt_otherwise_is_read_once(tmp_path: Path) -> None:
    # Keys in another order and spaces after the separators: not what the journal writes, so
    # the scan for rare events parses it, finds it bulky and leaves it to the columns.
    journal_dir = _run(tmp_path)
    lines = (journal_dir / "harness.jsonl").read_text(encoding="utf-8").splitlines()
    spelt = {index: json.loads(line) for index, line in enumerate(lines)
             if json.loads(line)["kind"] in ("send.recorded", "reminder.scheduled")}
    for index, event in spelt.items():
        lines[index] = json.dumps(dict(reversed(event.items())), ensure_ascii=False)
    (journal_dir / "harness.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    card = score_engine(journal_dir)
    assert card.model_dump() == _pure(journal_dir)
    assert (card.owed, card.outcomes["on_time"], card.outcomes["late"]) == (2, 1, 1)


def test_duckdb_gets_more_memory_only_for_journals_past_four_gigabytes() -> None:
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_limit(64 << 20) == memory_limit(4000 << 20) == MEMORY_LIMIT
    assert memory_limit(18 << 30) == min(18 << 27, machine // 2)
    assert memory_limit(1 << 50) == machine // 2
