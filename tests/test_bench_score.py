"""The scorer benchmark plants what it says: today's pure scorer and the DuckDB baseline read
exactly the planted figures from a small synthetic journal; the files are in time order, the
same bytes for the same seed; a measured process (its whole tree) past its limit is stopped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import score_duckdb
from bench.score import compare, measure
from bench.synthetic_journal import KINDS, Planted, Shares, write_run
from harness import judging, truth
from harness.continuity import score
from harness.journal import read_journal

SHARES = Shares(late=0.08, missed=0.06, duplicate=0.06, wrong_recipient=0.05, cancelled=0.05,
                opted_out=0.05, unmatched=0.05, refused_first=0.2)
"""Every kind several times over in 300 reminders."""
N, SEED = 300, 11


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Planted]:
    run_dir = tmp_path_factory.mktemp("synthetic") / "run"
    return run_dir, write_run(run_dir, N, SEED, SHARES)


def test_every_kind_is_planted(planted: tuple[Path, Planted]) -> None:
    _, p = planted
    assert p.reminders == N
    assert p.owed == N - p.cancelled - p.opted_out
    assert sum(p.outcomes.values()) == p.owed
    assert min(p.cancelled, p.opted_out, p.duplicates, p.unmatched, p.outcomes["late"],
               p.outcomes["missed"], p.outcomes["wrong_recipient"]) > 0
    assert len(KINDS) == 7


def test_todays_scorer_reads_the_planted_figures(planted: tuple[Path, Planted]) -> None:
    run_dir, p = planted
    card = score(read_journal(run_dir / "journal"))
    assert compare(card.model_dump(), p) == ()
    assert card.owed == p.owed and card.continuity == p.continuity
    # Nothing beyond what is planted: no defect the scorer would also count.
    assert (card.sent_to_opted_out, card.sent_after_repayment, card.sent_to_test_data,
            card.pii_exposed) == (0, 0, 0, 0)


def test_duckdb_baseline_reads_the_planted_figures(planted: tuple[Path, Planted]) -> None:
    run_dir, p = planted
    assert compare(score_duckdb.classify(run_dir / "journal"), p) == ()


def test_duckdb_baseline_uses_the_scorers_constants() -> None:
    assert score_duckdb.EARLY_SLACK == judging.EARLY_SLACK
    assert score_duckdb.CHANGE_GRACE == truth.CHANGE_GRACE


def test_files_are_in_time_order_with_their_own_sequence(planted: tuple[Path, Planted]) -> None:
    run_dir, p = planted
    events = 0
    for path in sorted((run_dir / "journal").glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        times = [line["t"] for line in lines]
        assert times == sorted(times), path.name
        assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
        assert {line["source"] for line in lines} == {path.stem}
        events += len(lines)
    assert events == p.events
    assert sum(path.stat().st_size for path in (run_dir / "journal").glob("*.jsonl")) == p.bytes


def test_same_seed_same_bytes(planted: tuple[Path, Planted], tmp_path: Path) -> None:
    run_dir, _ = planted
    write_run(tmp_path / "again", N, SEED, SHARES)
    for name in ("harness.jsonl", "mocks.jsonl"):
        assert ((tmp_path / "again" / "journal" / name).read_bytes()
                == (run_dir / "journal" / name).read_bytes())


def test_compare_names_each_differing_figure(planted: tuple[Path, Planted]) -> None:
    _, p = planted
    figures = {**p.figures(), "owed": p.owed + 1,
               "outcomes": {**p.outcomes, "late": p.outcomes["late"] - 1}}
    assert compare(figures, p) == (f"owed: got {p.owed + 1}, planted {p.owed}",
                                   f"outcomes.late: got {p.outcomes['late'] - 1}, "
                                   f"planted {p.outcomes['late']}")


def test_measure_stops_a_process_past_its_time() -> None:
    stopped = measure([sys.executable, "-c", "import time; time.sleep(60)"], max_seconds=0.5,
                      max_rss=1 << 40)
    assert stopped.stopped == "time" and not stopped.finished
    ended = measure([sys.executable, "-c", "print('x' * 3); raise SystemExit(3)"],
                    max_seconds=60, max_rss=1 << 40)
    assert (ended.stopped, ended.exit_code, ended.output.strip()) == (None, 3, "xxx")
    assert ended.peak_rss > 0


def test_measure_stops_a_process_past_its_memory() -> None:
    hog = measure([sys.executable, "-c", "import time; b = bytearray(200 << 20); time.sleep(60)"],
                  max_seconds=60, max_rss=100 << 20)
    assert hog.stopped == "memory"


def test_measure_counts_the_whole_process_tree() -> None:
    # Two children of 80 MB each: neither alone passes 120 MB, together they do.
    child = "import time; b = b'x' * (80 << 20); time.sleep(60)"
    parent = ("import subprocess, sys, time; "
              f"kids = [subprocess.Popen([sys.executable, '-c', {child!r}]) for _ in range(2)]; "
              "time.sleep(60)")
    tree = measure([sys.executable, "-c", parent], max_seconds=60, max_rss=120 << 20)
    assert tree.stopped == "memory"
    assert tree.peak_rss > 120 << 20
