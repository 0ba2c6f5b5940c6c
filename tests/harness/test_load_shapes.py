"""Load shapes as curves: their rates, their exact tick counts, and each tick's time."""

from __future__ import annotations

import random

import pytest

from harness.load_shapes import (
    DAY,
    Curve,
    Extra,
    Segment,
    batches,
    curve,
    daily,
    month_end,
    spike,
)


def test_a_steady_curve_ticks_at_the_middle_of_each_interval() -> None:
    steady = curve(4.0, 10.0)

    assert steady.ticks == 40
    assert [steady.tick_at(k) for k in (0, 1, 39)] == [0.125, 0.375, 9.875]
    assert steady.tick_at(40) is None


def test_a_spike_multiplies_the_base_rate_for_its_window_only() -> None:
    shape = spike(2.0, 30.0, at=10.0, lasting=5.0, factor=4.0)

    assert [shape.rate(t) for t in (0.0, 9.99, 10.0, 14.99, 15.0, 29.99, 30.0)] == [
        2.0, 2.0, 8.0, 8.0, 2.0, 2.0, 0.0]
    assert shape.ticks == 2 * 25 + 8 * 5
    assert shape.peak == 8.0


def test_batches_add_their_count_on_top_of_the_background_and_overlaps_add_up() -> None:
    shape = batches(1.0, 20.0, starts=[5.0, 7.0], count=30, within=4.0)

    assert shape.ticks == 20 + 60
    assert shape.rate(6.0) == 1.0 + 7.5
    assert shape.rate(8.0) == 1.0 + 15.0
    assert shape.rate(10.5) == 1.0 + 7.5
    assert shape.rate(11.0) == 1.0


def test_the_part_of_a_window_outside_the_run_is_left_out() -> None:
    shape = curve(1.0, 10.0, [Extra(8.0, 14.0, 2.0), Extra(-3.0, 1.0, 1.0)])

    assert shape.segments == (Segment(0.0, 1.0, 2.0), Segment(1.0, 8.0, 1.0),
                              Segment(8.0, 10.0, 3.0))
    assert shape.ticks == 2 + 7 + 6


def test_daily_times_fall_at_that_hour_of_each_compressed_day() -> None:
    speed = 31 * DAY / 62.0  # a day every 2 s

    times = daily(9 * 3600.0, speed, 62.0)

    assert len(times) == 31
    assert times[0] == pytest.approx(0.75)
    assert times[30] == pytest.approx(60.75)


def test_the_last_days_of_the_month_carry_most_installments() -> None:
    shape = month_end(3.0, 50.0, days=31, last_days=6, peak=18.0)
    last = 50.0 * 25 / 31

    assert shape.rate(last - 0.01) == 3.0 and shape.rate(last) == 18.0
    share = (shape.count(50.0) - shape.count(last)) / shape.count(50.0)
    assert share > 0.5
    assert shape.ticks == round(3.0 * last + 18.0 * (50.0 - last))


def test_each_tick_falls_where_the_count_reaches_it_and_no_tick_is_lost() -> None:
    draws = random.Random(11)
    for _ in range(200):
        duration = draws.uniform(1.0, 120.0)
        extras = [Extra(a, a + draws.uniform(0.1, 20.0), draws.uniform(0.0, 40.0))
                  for a in (draws.uniform(-5.0, duration) for _ in range(draws.randint(0, 4)))]
        shape = curve(draws.uniform(0.1, 25.0), duration, extras)
        times = [shape.tick_at(k) for k in range(shape.ticks)]
        assert all(t is not None for t in times)
        ordered = [t for t in times if t is not None]
        assert ordered == sorted(ordered) and ordered[0] >= 0 and ordered[-1] <= duration
        for k, t in enumerate(ordered):
            assert shape.count(t) == pytest.approx(k + 0.5)
        assert shape.tick_at(shape.ticks) is None


def test_a_curve_goes_to_locust_as_json_and_back_unchanged() -> None:
    shape = spike(2.5, 30.0, at=10.0, lasting=5.0, factor=3.0)

    assert Curve.from_json(shape.to_json()) == shape


@pytest.mark.parametrize("segments", [
    (),
    (Segment(1.0, 2.0, 1.0),),
    (Segment(0.0, 2.0, 1.0), Segment(3.0, 4.0, 1.0)),
    (Segment(0.0, 2.0, -1.0),),
    (Segment(0.0, 0.0, 1.0),),
])
def test_a_curve_with_gaps_or_negative_rates_is_refused(segments: tuple[Segment, ...]) -> None:
    with pytest.raises(ValueError):
        Curve(segments)
