"""Old run folders stay readable: a journal written before the schema version (journal_v1/,
with the scorecard the code of its day gave it) is scored the same by today's code and compared
with itself and with a tampered copy; a run writes today's version; a journal written by a newer
notifychaos is refused in one line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness import JournalError, NotifyChaosError, compare, rehearse, score
from harness.journal import JOURNAL_SCHEMA, RunStarted, read_journal

V1 = Path(__file__).parent / "journal_v1"
DEMO = Path(__file__).resolve().parents[2] / "scenarios" / "primary-vendor-outage.yaml"


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_lines(path: Path, events: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events),
                    encoding="utf-8")


def test_a_version_1_journal_is_read_as_version_1() -> None:
    assert "schema_version" not in lines(V1 / "journal" / "harness.jsonl")[0]
    started = read_journal(V1 / "journal").first(RunStarted)
    assert started is not None and started.schema_version == 1


def as_old(now: Any, then: Any) -> Any:
    """`now` with only the keys `then` has, at every depth (its lists item by item)."""
    if isinstance(then, dict) and isinstance(now, dict):
        return {key: as_old(now[key], then[key]) if key in now else "(gone)" for key in then}
    if isinstance(then, list) and isinstance(now, list) and len(then) == len(now):
        return [as_old(new, old) for new, old in zip(now, then, strict=True)]
    return now


def test_a_version_1_journal_scores_as_it_did_when_it_was_written() -> None:
    then = json.loads((V1 / "scorecard.json").read_text(encoding="utf-8"))
    now = score(V1).model_dump(mode="json")
    # Every figure the old scorecard had is unchanged, at every depth (a fault row's, a
    # trace's); figures added since may join it.
    assert as_old(now, then) == then
    assert then["owed"] > 10 and then["cancelled"] > 0  # a journal with something in it


def test_a_version_1_journal_compared_with_itself_is_not_worse() -> None:
    same = compare(V1, V1)
    assert (same.verdict, same.changed, same.only_baseline, same.only_rehearsal) == (
        "not worse", [], [], [])
    assert same.compared == 28 and same.owed_in_both == 18


def test_a_tampered_send_makes_its_copy_worse_naming_that_reminder(tmp_path: Path) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(V1, tampered)
    mocks = tampered / "journal" / "mocks.jsonl"
    events = lines(mocks)
    send = next(e for e in events if e["kind"] == "send.recorded")
    # The phone was off: the message never reached the inbox.
    send.update(handset="absent", inbox_at=None)
    write_lines(mocks, events)
    match = re.search(r"ref:([A-Z0-9]{8})", send["body"])
    assert match is not None
    [scheduled] = [e for e in events if e["kind"] == "reminder.scheduled"
                   and e["ref"] == match.group(1)]

    result = compare(V1, tampered)
    assert result.worse
    assert [(r.reminder_id, r.ref, r.borrower_id, r.baseline, r.rehearsal, r.lost)
            for r in result.changed] == [(scheduled["reminder_id"], scheduled["ref"],
                                          scheduled["borrower_id"], "on_time", "unsettled",
                                          True)]
    assert (f"1 reminder lost: {scheduled['reminder_id']} ({scheduled['borrower_id']}, "
            "on_time -> unsettled)") in result.reasons
    # The run ended inside its window (as every reminder's of this short run): not settled.
    card = score(tampered)
    assert (card.owed, card.unsettled) == (17, 1)


def test_a_journal_of_a_newer_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    newer = tmp_path / "newer"
    shutil.copytree(V1, newer)
    harness_file = newer / "journal" / "harness.jsonl"
    events = lines(harness_file)
    events[0]["schema_version"] = JOURNAL_SCHEMA + 1
    # A newer format may also bring events this code has never heard of.
    events.append({"t": events[-1]["t"], "source": "harness", "seq": len(events) + 1,
                   "kind": "instance.promoted", "instance": "standby"})
    write_lines(harness_file, events)
    message = (f"{harness_file}: written by a newer notifychaos: schema {JOURNAL_SCHEMA + 1}, "
               f"this one reads up to {JOURNAL_SCHEMA}")
    for read in (score, lambda folder: compare(V1, folder)):
        with pytest.raises(JournalError) as refused:
            read(newer)
        assert str(refused.value) == message


def test_a_run_writes_todays_schema_version(tmp_path: Path) -> None:
    # A Toxiproxy nobody serves ends the run early, once its run.started is journaled.
    with pytest.raises(NotifyChaosError, match="nothing listens"):
        rehearse(DEMO, out=tmp_path, toxiproxy_url="http://127.0.0.1:9")
    [run_dir] = tmp_path.iterdir()
    started = read_journal(run_dir / "journal").first(RunStarted)
    assert started is not None and started.schema_version == JOURNAL_SCHEMA
    assert lines(run_dir / "journal" / "harness.jsonl")[0]["schema_version"] == JOURNAL_SCHEMA
