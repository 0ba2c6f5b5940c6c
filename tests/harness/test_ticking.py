"""Which ticks a Locust user asks for in one request: every tick due since its last request,
never one ahead of its time, none twice, at most MAX_BATCH, and in all the curve's count."""

from __future__ import annotations

import random

import pytest

from harness.load_shapes import curve, spike
from harness.ticking import MAX_BATCH, Stream, due, steady


def test_a_steady_stream_has_its_k_th_tick_at_the_middle_of_its_interval() -> None:
    stream = steady(4.0)

    assert [stream.tick_at(k) for k in (0, 1, 1000)] == [0.125, 0.375, 250.125]
    assert [due(stream, t) for t in (-1.0, 0.0, 0.124, 0.125, 0.374, 0.375, 250.125)] == [
        0, 0, 0, 1, 1, 2, 1001]


@pytest.mark.parametrize("seed", range(5))
def test_due_counts_exactly_the_ticks_whose_time_has_come(seed: int) -> None:
    rng = random.Random(seed)
    shaped = spike(rng.uniform(0.5, 50.0), 60.0, rng.uniform(0.0, 50.0), 5.0,
                   rng.uniform(1.5, 10.0))
    times = [at for k in range(shaped.ticks + 1) if (at := shaped.tick_at(k)) is not None]

    # At each tick's own time (where float rounding is most likely to be off) and between.
    for t in [*times, *(rng.uniform(-1.0, 70.0) for _ in range(200))]:
        assert due(shaped, t) == sum(1 for at in times if at <= t)
    assert due(shaped, 1e9) == shaped.ticks


def test_a_stream_takes_each_tick_once_in_batches_none_ahead_of_time() -> None:
    shaped = spike(20.0, 30.0, 10.0, 5.0, 10.0)
    stream = Stream(shaped, origin=1000.0)
    rng = random.Random(3)
    now, batches = 1000.0, []
    while (at := stream.next_at()) is not None:
        # A user wakes when the next tick is due, or later (its interval, a slow answer).
        now = max(now, at) + rng.choice([0.0, 0.0, 0.05, 0.2, 1.0])
        before = stream.taken
        batches.append(stream.take(now))
        # Everything due by now is taken, nothing after it.
        assert stream.taken == due(shaped, now, 1000.0) > before
    assert sum(batches) == stream.taken == shaped.ticks
    assert stream.take(now + 100.0) == 0
    assert max(batches) > 1  # the slow wakes batched


def test_a_stream_that_fell_far_behind_takes_at_most_the_bound_per_request() -> None:
    stream = Stream(curve(5000.0, 10.0), origin=0.0)

    assert [stream.take(10.0) for _ in range(51)] == [MAX_BATCH] * 50 + [0]
    assert stream.taken == 50_000


def test_a_clock_that_steps_back_takes_nothing_rather_than_a_negative_count() -> None:
    stream = Stream(steady(10.0), origin=0.0)

    assert stream.take(1.0) == 10
    assert stream.take(0.5) == 0
    assert stream.taken == 10


def test_a_user_s_steady_stream_ticks_at_once_and_then_every_interval() -> None:
    stream = Stream.steady(4.0, start=500.0)

    assert stream.next_at() == 500.0
    assert [stream.take(now) for now in (500.0, 500.2, 500.25, 501.0)] == [1, 0, 1, 3]
    assert stream.next_at() == 501.25


@pytest.mark.parametrize(("parts", "seed"), [(2, 0), (3, 1), (5, 2)])
def test_workers_parts_tick_the_whole_curve_between_them_each_tick_once_in_its_time(
        parts: int, seed: int) -> None:
    rng = random.Random(seed)
    shaped = spike(7.0, 20.0, 5.0, 4.0, 6.0)
    streams = [Stream(shaped, 100.0, part, parts) for part in range(parts)]
    taken: list[int] = []
    for now in sorted(rng.uniform(99.0, 125.0) for _ in range(300)):
        for stream in rng.sample(streams, parts):  # the workers in no set order
            count = stream.take(now)
            ticks = [stream.part + parts * (stream.taken - count + i) for i in range(count)]
            assert all(100.0 + (shaped.tick_at(k) or 0.0) <= now for k in ticks)
            taken += ticks
            upcoming = stream.next_at()
            assert upcoming is None or upcoming > now
    assert sorted(taken) == list(range(shaped.ticks))
    assert max(s.taken for s in streams) - min(s.taken for s in streams) <= 1


def test_a_part_must_be_one_of_the_parts() -> None:
    with pytest.raises(ValueError, match="part 2 of 2: expected 0 <= part < parts"):
        Stream(steady(1.0), 0.0, 2, 2)
