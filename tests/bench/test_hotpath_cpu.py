"""The hot-path benchmark's pure parts: /proc stat lines, components by process tree, the
per-reminder arithmetic (bench/procstat.py, bench/hotpath.py); no run is started."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest

from bench.hotpath import (
    Phases,
    Point,
    Sample,
    counter_at,
    cpu_between,
    fixed_and_marginal,
    harness_share,
    highest_passing,
    kept_up,
    overrides,
    per_owed_us,
    phases_of,
    sends_between,
    steady_window,
    users_for,
    waited_between,
    workers_for,
)
from bench.procstat import (
    COMPONENTS,
    TICK,
    Counts,
    ProcStat,
    RunMeter,
    component_of,
    machine_busy_ticks,
    parse_stat,
    run_queue_wait,
    tree_ticks,
)


def stat_line(pid: int, ppid: int, name: str = "python", utime: int = 0, stime: int = 0,
              cutime: int = 0, cstime: int = 0) -> str:
    """A /proc/<pid>/stat line as Linux writes it (fields after the times are arbitrary)."""
    return (f"{pid} ({name}) S {ppid} {pid} {pid} 0 -1 4194304 136 0 0 0 "
            f"{utime} {stime} {cutime} {cstime} 20 0 1 0 4729605 2998272 391\n")


def test_a_stat_line_gives_the_parent_and_the_times_even_with_a_name_of_spaces_and_parens(
        ) -> None:
    stat = parse_stat(stat_line(4242, 7, name="a) b (c", utime=30, stime=12, cutime=5, cstime=1))
    assert stat == ProcStat(pid=4242, ppid=7, own=42, waited=6)


def test_this_process_stat_line_parses() -> None:
    stat = parse_stat(Path("/proc/self/stat").read_text())
    assert stat.ppid > 0 and stat.own >= 0


@pytest.mark.parametrize("line", ["", "12 python S 1", "12 (python) S 1 2 3"])
def test_a_line_that_is_not_a_stat_line_is_refused_in_one_line(line: str) -> None:
    with pytest.raises(ValueError, match="/proc/<pid>/stat"):
        parse_stat(line)


@pytest.mark.parametrize(("argv", "component"), [
    (("/work/main/.tools/bin/toxiproxy-server", "-host", "127.0.0.1"), "toxiproxy"),
    (("/venv/bin/python", "-m", "mocks", "config.json", "manifest.json"), "mocks"),
    (("/venv/bin/python", "-m", "locust", "-f", "locustfile.py"), "locust"),
    (("/venv/bin/python", "-m", "harness.watchdog", "run.lock"), "harness"),
    (("python", "-m", "examples.reminder_service"), "notifier"),
    (("./my-notifier", "--port", "8080"), "notifier"),
    ((), "notifier"),
])
def test_a_child_of_the_harness_is_named_by_its_command_line(argv: tuple[str, ...],
                                                             component: str) -> None:
    assert component_of(argv) == component


def table_of(*lines: str) -> dict[int, ProcStat]:
    stats = [parse_stat(line) for line in lines]
    return {stat.pid: stat for stat in stats}


def test_the_tree_counts_the_harness_own_time_and_each_component_with_its_children() -> None:
    table = table_of(
        stat_line(1, 0, utime=999),  # not the run's
        stat_line(10, 1, utime=7, stime=3, cutime=500),  # the harness: its waited-for is theirs
        stat_line(11, 10, "toxiproxy-serv", utime=20),
        stat_line(12, 10, utime=100, stime=50, cutime=4, cstime=1),  # the notifier
        stat_line(13, 12, "worker", utime=40),  # the notifier's own child
        stat_line(14, 13, "grandchild", stime=2),
    )
    found = tree_ticks(table, 10, {11: "toxiproxy", 12: "notifier"})
    assert found == {10: ("harness", 10), 11: ("toxiproxy", 20), 12: ("notifier", 155),
                     13: ("notifier", 40), 14: ("notifier", 2)}
    assert 1 not in found


def write_cmdline(proc: Path, pid: int, *argv: str) -> None:
    (proc / str(pid)).mkdir(parents=True, exist_ok=True)
    (proc / str(pid) / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in argv) + b"\0")


def write_schedstat(proc: Path, pid: int, tid: int, waited_ns: int) -> None:
    (proc / str(pid) / "task" / str(tid)).mkdir(parents=True, exist_ok=True)
    (proc / str(pid) / "task" / str(tid) / "schedstat").write_text(f"123 {waited_ns} 9\n")


def test_a_process_wait_for_a_core_is_that_of_all_its_threads(tmp_path: Path) -> None:
    write_schedstat(tmp_path, 30, 30, 1_000)
    write_schedstat(tmp_path, 30, 31, 2_500)
    assert run_queue_wait(30, tmp_path) == 3_500
    assert run_queue_wait(99, tmp_path) == 0  # gone
    assert run_queue_wait(os.getpid()) >= 0


def test_the_meter_keeps_an_ended_component_and_counts_a_reaped_grandchild_once(
        tmp_path: Path) -> None:
    write_cmdline(tmp_path, 21, "python", "-m", "locust", "-f", "x.py")
    write_cmdline(tmp_path, 22, "python", "-m", "mocks", "c.json", "m.json")
    write_schedstat(tmp_path, 22, 22, 4_000_000_000)
    meter = RunMeter(20, proc=tmp_path)
    first = meter.sample(table_of(
        stat_line(20, 1, utime=5),
        stat_line(21, 20, utime=300),
        stat_line(22, 20, utime=100),
        stat_line(23, 22, utime=30),  # a child of the mocks, still running
    ))
    assert first.cpu == {"mocks": 130, "toxiproxy": 0, "locust": 300, "harness": 5,
                         "notifier": 0}
    assert first.waited == {"mocks": 4.0, "toxiproxy": 0, "locust": 0, "harness": 0,
                            "notifier": 0}
    write_schedstat(tmp_path, 22, 22, 1_000_000_000)  # a thread ended: the most seen is kept
    # Locust ended (the harness waited for it: 310 ticks in the harness's waited-for time) and
    # the mocks' child ended too, its 35 ticks now in the mocks' waited-for time.
    second = meter.sample(table_of(
        stat_line(20, 1, utime=6, cutime=310),
        stat_line(22, 20, utime=120, cutime=35),
    ))
    assert second.cpu == {"mocks": 155, "toxiproxy": 0, "locust": 300, "harness": 6,
                          "notifier": 0}
    assert list(second.cpu) == list(COMPONENTS)
    assert second.waited["mocks"] == 4.0


def write_stat(proc: Path, line: str) -> None:
    pid = line.split()[0]
    (proc / pid).mkdir(parents=True, exist_ok=True)
    (proc / pid / "stat").write_text(line)


def test_between_rescans_the_meter_reads_only_the_run_known_processes(tmp_path: Path) -> None:
    write_cmdline(tmp_path, 41, "python", "-m", "mocks", "c.json", "m.json")
    write_stat(tmp_path, stat_line(40, 1, utime=1))
    write_stat(tmp_path, stat_line(41, 40, utime=10))
    write_stat(tmp_path, stat_line(99, 1, utime=500))  # not the run's
    meter = RunMeter(40, proc=tmp_path, rescan=3600.0)
    assert meter.sample().cpu["mocks"] == 10  # the first sample reads all of /proc
    write_stat(tmp_path, stat_line(41, 40, utime=15))
    write_stat(tmp_path, stat_line(42, 41, utime=7))  # new: not read until the next rescan
    assert meter.sample().cpu["mocks"] == 15
    rescanning = RunMeter(40, proc=tmp_path, rescan=0.0)
    assert rescanning.sample().cpu == {"mocks": 22, "toxiproxy": 0, "locust": 0, "harness": 1,
                                       "notifier": 0}


def test_the_machine_busy_time_leaves_out_idle_and_iowait(tmp_path: Path) -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice
    (tmp_path / "stat").write_text("cpu  100 2 30 5000 40 1 3 4 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
    assert machine_busy_ticks(tmp_path) == 140
    assert machine_busy_ticks() > 0


def sample(t: float, ticks: int, machine: int = 0, waited: float = 0.0) -> Sample:
    return Sample(t, Counts(cpu=dict.fromkeys(COMPONENTS, ticks),
                            waited=dict.fromkeys(COMPONENTS, waited)), machine)


def mocks_ticks(sample: Sample) -> float:
    return sample.counts.cpu["mocks"]


def machine_ticks(sample: Sample) -> float:
    return sample.machine


def test_a_counter_between_samples_is_interpolated_and_held_outside_them() -> None:
    samples = [sample(10.0, 0, 0), sample(11.0, 100, 1000), sample(13.0, 100, 1400)]
    assert counter_at(samples, 10.5, mocks_ticks) == 50
    assert counter_at(samples, 12.0, mocks_ticks) == 100
    assert counter_at(samples, 12.5, machine_ticks) == 1300
    assert counter_at(samples, 9.0, mocks_ticks) == 0
    assert counter_at(samples, 20.0, machine_ticks) == 1400
    with pytest.raises(ValueError, match="no samples"):
        counter_at([], 1.0, mocks_ticks)


def test_the_cpu_per_owed_reminder_is_cpu_seconds_over_the_reminders_owed() -> None:
    # Every component used 2 * TICK ticks, two CPU seconds, between t=0 and t=10.
    samples = [sample(0.0, 0), sample(10.0, 2 * TICK, waited=3.0)]
    assert waited_between(samples, 0.0, 5.0) == dict.fromkeys(COMPONENTS, 1.5)
    cpu = cpu_between(samples, 0.0, 10.0)
    assert cpu == dict.fromkeys(COMPONENTS, 2.0)
    us = per_owed_us(cpu, 10_000)  # 2 s over 10,000 reminders: 200 µs each
    assert us == pytest.approx(dict.fromkeys(COMPONENTS, 200.0))
    assert harness_share(us) == pytest.approx(800.0)  # four components, not the notifier
    assert all(math.isnan(value) for value in per_owed_us(cpu, 0).values())


def point(rate: float, continuity: float | None) -> Point:
    zero = dict.fromkeys(COMPONENTS, 0.0)
    return Point(rate=rate, users=4, workers=4, exit_code=0, owed=1, ticked_rate=rate,
                 continuity=continuity,
                 p95_s=None, load_s=1.0, tail_s=1.0, cpu_s=zero, us_per_owed=zero, harness_us=0.0,
                 notifier_us=0.0, tail_us_per_owed=zero, steady_reminders=0,
                 steady_us_per_reminder=zero, cores=zero, waited_cores=zero, other_cores=0.0,
                 sampler_cores=0.0, load_average="")


def test_the_highest_rate_is_the_highest_that_kept_continuity_at_the_goal() -> None:
    points = [point(100, 1.0), point(400, 0.99), point(1000, 0.98), point(2000, None)]
    assert highest_passing(points) == 400
    assert highest_passing([point(100, 0.5)]) is None


def loaded(rate: float, ticked: float, harness_cores: float, notifier_cores: float) -> Point:
    cores = {**dict.fromkeys(COMPONENTS, 0.0), "mocks": harness_cores / 2,
             "locust": harness_cores / 2, "notifier": notifier_cores}
    return dataclasses.replace(point(rate, 1.0), ticked_rate=ticked, cores=cores)


def test_the_fixed_and_marginal_cost_come_from_the_runs_that_kept_up() -> None:
    # 0.1 cores idle + 500 µs a reminder; the notifier 0.05 + 1000 µs. The run at 1000/s fell
    # behind (only 300/s fell due) and is left out.
    points = [loaded(100, 100, 0.15, 0.15), loaded(200, 200, 0.2, 0.25),
              loaded(400, 400, 0.3, 0.45), loaded(1000, 300, 1.9, 0.3)]
    assert fixed_and_marginal(points, notifier=False) == pytest.approx((0.1, 500.0))
    assert fixed_and_marginal(points, notifier=True) == pytest.approx((0.05, 1000.0))
    assert fixed_and_marginal(points[:1] + points[3:], notifier=False) is None


def test_a_run_whose_locust_made_under_95_percent_of_the_rate_fall_due_is_behind() -> None:
    assert kept_up(point(400, 1.0))
    assert kept_up(dataclasses.replace(point(400, 1.0), ticked_rate=381.0))
    assert not kept_up(dataclasses.replace(point(400, 1.0), ticked_rate=379.0))


def test_the_steady_window_starts_after_the_settling_and_counts_its_reminders() -> None:
    scheduled = [100.0 + i / 10 for i in range(301)]  # 10/s from 100 s to 130 s
    start, end, count = steady_window(scheduled) or (0.0, 0.0, 0)
    assert (start, end) == (110.0, 130.0)
    assert count == 201  # 110.0 to 130.0 inclusive, at 10/s
    assert steady_window(scheduled[:100]) is None  # 10 s of load: no steady state
    assert steady_window([]) is None


def test_the_phases_come_from_the_harness_journal(tmp_path: Path) -> None:
    journal = tmp_path / "harness.jsonl"
    journal.write_text(
        '{"t":1.0,"source":"harness","seq":1,"kind":"run.started"}\n'
        '{"t":2.5,"source":"harness","seq":2,"kind":"load.started","pid":7}\n'
        '{"t":33.0,"source":"harness","seq":3,"kind":"load.finished","exit_code":0,'
        '"requests":3,"failures":0}\n'
        '{"t":40.0,"source":"harness","seq":4,"kind":"run.ended","status":"completed"}\n')
    assert phases_of(journal) == Phases(2.5, 33.0, 40.0)
    journal.write_text('{"t":2.5,"source":"harness","seq":2,"kind":"load.started","pid":7}\n')
    with pytest.raises(SystemExit, match=r"no load\.finished, run\.ended"):
        phases_of(journal)


def test_high_rates_get_enough_locust_users_and_notifier_workers_and_a_fault_free_demo(
        ) -> None:
    assert (users_for(4), users_for(400), users_for(2000), users_for(5000)) == (4, 4, 4, 10)
    assert (workers_for(4), workers_for(400), workers_for(2000)) == (4, 20, 100)
    sets = overrides(2000, 30, 200, 40)
    assert "timeline=[]" in sets
    assert {"reminders.rate=2000", "duration=30s", "load.users=200", "load.spawn_rate=200",
            "target.env.WORKERS='40'"} <= set(sets)


def test_the_sends_of_a_phase_are_the_messages_the_vendors_accepted_in_it(tmp_path: Path) -> None:
    lines = [{"t": t, "kind": kind} for t, kind in
             [(1.0, "send.recorded"), (2.0, "send.recorded"), (2.5, "vendor.call"),
              (3.0, "send.recorded"), (4.5, "send.recorded")]]
    (tmp_path / "mocks.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "harness.jsonl").write_text(json.dumps({"t": 2.2, "kind": "load.started"}) + "\n")
    assert sends_between(tmp_path, 2.0, 3.0) == 2
    assert sends_between(tmp_path, 0.0, 9.0) == 4
