"""The mocks' journal commits in groups: whole lines, one write per loop turn, and an answer that
acknowledges a send leaves only once its send is in the file."""

from __future__ import annotations

import asyncio
import errno
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mockkit import REPORT_PATH, Mocks, Receiver, running_mocks, twilio_send

from harness.journal import AlertReceived, JournalWriter, SendRecorded, VendorCall, read_journal


def _alert(n: int) -> AlertReceived:
    return AlertReceived(body={"n": n})


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


class _Counting(io.RawIOBase):
    """A journal file that counts the write() calls made to it."""

    def __init__(self, real: io.FileIO) -> None:
        self.real, self.calls = real, 0

    def write(self, data: object) -> int:
        self.calls += 1
        return self.real.write(data)  # type: ignore[arg-type]

    def fileno(self) -> int:
        return self.real.fileno()

    def close(self) -> None:
        self.real.close()
        super().close()


def test_a_loop_turns_events_are_written_together_once_committed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = JournalWriter(tmp_path, "mocks", group_commit=True)
    counting = _Counting(writer._file)
    monkeypatch.setattr(writer, "_file", counting)

    async def turn() -> tuple[int, int]:
        for n in range(3):
            writer.write(_alert(n))
        before = len(_lines(writer.path))  # nothing yielded to the loop yet
        await writer.committed()
        return before, len(_lines(writer.path))

    try:
        assert asyncio.run(turn()) == (0, 3)
        assert counting.calls == 1
        assert all(line.endswith(b"\n") for line in _lines(writer.path))
        assert [e.body for e in read_journal(tmp_path).of(AlertReceived)] == [
            {"n": 0}, {"n": 1}, {"n": 2}]
    finally:
        writer.close()


def test_outside_a_loop_and_at_close_nothing_is_left_waiting(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "mocks", group_commit=True)
    thread = threading.Thread(target=writer.write, args=(_alert(0),))
    thread.start()
    thread.join(timeout=10)
    assert len(_lines(writer.path)) == 1  # a thread with no loop writes at once

    async def pending() -> None:
        writer.write(_alert(1))

    asyncio.run(pending())  # the loop's commit may or may not have run: close writes the rest
    writer.close()
    assert [e.seq for e in read_journal(tmp_path).events] == [1, 2]
    with pytest.raises(ValueError, match="closed"):
        writer.write(_alert(2))


class _FullDisk(io.RawIOBase):
    """A journal file on a disk that fills up after `room` more bytes."""

    def __init__(self, real: io.FileIO, room: int) -> None:
        self.real, self.room = real, room

    def write(self, data: object) -> int:
        view = memoryview(data)  # type: ignore[arg-type]
        if self.room == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        taken = self.real.write(view[:self.room])
        self.room -= taken
        return taken

    def fileno(self) -> int:
        return self.real.fileno()

    def close(self) -> None:
        self.real.close()
        super().close()


def test_a_batch_the_disk_cannot_take_is_cut_back_to_whole_lines_and_fails_its_waiters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = JournalWriter(tmp_path, "mocks", group_commit=True)
    writer.write(_alert(0))  # outside a loop: in the file now
    whole = writer.path.stat().st_size
    monkeypatch.setattr(writer, "_file", _FullDisk(writer._file, room=10))

    async def turn() -> None:
        writer.write(_alert(1))
        writer.write(_alert(2))
        await writer.committed()

    try:
        with pytest.raises(OSError, match="No space"):
            asyncio.run(turn())
        assert writer.path.stat().st_size == whole  # the 10 bytes that fitted are gone
        with pytest.raises(OSError, match="No space"):
            writer.write(_alert(3))  # the journal has a gap: it takes no more
    finally:
        writer.close()
    assert [e.seq for e in read_journal(tmp_path).events] == [1]


@pytest.fixture
def fleet(tmp_path: Path, reports: Receiver) -> Iterator[Mocks]:
    with running_mocks(tmp_path, reports.url + REPORT_PATH) as served:
        yield served


def test_an_acknowledged_send_is_in_the_journal_file_when_its_answer_arrives(
        client: httpx.Client, fleet: Mocks) -> None:
    twilio = fleet.manifest.vendors["twilio"]
    for n in range(20):
        answer = twilio_send(client, twilio, {"To": f"+861380000{n:04d}", "From": "+15005550006",
                                              "Body": f"ref:{n}"})
        assert answer.status_code == 201, answer.text
        journal = read_journal(fleet.journal_dir)  # at once: no waiting for the writer
        assert answer.json()["sid"] in {s.message_id for s in journal.of(SendRecorded)}
        assert len(journal.of(VendorCall)) == n + 1


def test_a_send_whose_answer_is_lost_is_in_the_file_when_the_connection_is_cut(
        client: httpx.Client, fleet: Mocks) -> None:
    twilio = fleet.manifest.vendors["twilio"]
    assert client.put(twilio.control_url, json={"response_lost": 1.0}).status_code == 200
    for n in range(10):
        with pytest.raises(httpx.RemoteProtocolError):
            twilio_send(client, twilio, {"To": f"+861390000{n:04d}", "From": "+15005550006",
                                         "Body": f"lost:{n}"})
        journal = read_journal(fleet.journal_dir)  # at once, as a notifier's retry would
        assert f"lost:{n}" in {s.body for s in journal.of(SendRecorded)}
        assert [c.outcome for c in journal.of(VendorCall)].count("lost") == n + 1
