"""Off a terminal the live display makes its figures only for the line that shows them: a
snapshot costs every reminder still open, and a log gets one line every 10 s."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from harness.journal import Event, JournalWriter, LoadStarted, RunStarted
from harness.live import LiveDisplay, RunProgress, Snapshot
from tests.harness.journals import SCENARIO, T0, owed
from tests.harness.test_live import wait_for


def test_off_a_terminal_a_snapshot_is_made_only_for_each_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "run" / "journal"
    writer = JournalWriter(journal, "harness")
    events: list[Event] = [RunStarted(t=T0, scenario=SCENARIO), LoadStarted(t=T0, pid=1),
                           owed("AAAAAAAA", 1)]
    for event in events:
        writer.write(event)
    writer.close()
    reads, snapshots = [0], [0]
    add, snapshot = RunProgress.add, RunProgress.snapshot

    def counted_add(self: RunProgress, new: list[Event]) -> None:
        reads[0] += 1
        add(self, new)

    def counted_snapshot(self: RunProgress, now: float) -> Snapshot:
        snapshots[0] += 1
        return snapshot(self, now)

    monkeypatch.setattr(RunProgress, "add", counted_add)
    monkeypatch.setattr(RunProgress, "snapshot", counted_snapshot)
    now = [T0 + 12.0]
    with (tmp_path / "out.log").open("w", encoding="utf-8") as file:
        console = Console(file=file, highlight=False)
        with LiveDisplay(console, poll=0.01, clock=lambda: now[0]) as live:
            live.say(f"run folder: {journal.parent}")
            wait_for(lambda: reads[0] >= 20, "twenty polls of the journal")
            assert snapshots[0] == 1  # the 12 s line's
            now[0] = T0 + 21.0
            wait_for(lambda: snapshots[0] == 2, "the 21 s line's snapshot")
            polled = reads[0]
            wait_for(lambda: reads[0] >= polled + 20, "twenty more polls")
    assert snapshots[0] == 2
