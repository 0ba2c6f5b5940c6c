"""Geometry of the report's run chart: reminders due, delivered on time and backlog over time, with
each fault step's window, and under it the owed reminders per bucket (per calendar day of a
compressed month, whose days then label the time axis), as SVG coordinates the template only
has to print."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from harness.load_shapes import DAY
from harness.scorecard import Bucket, Calendar, FaultFigures, Sample

WIDTH = 960
_LEFT, _RIGHT = 64, 16  # room for the y labels; a little air on the right
_LANE = 20  # one row of fault labels above the plot
_PLOT_HEIGHT = 280
_BOTTOM = 44  # x labels and the axis title
_CHAR = 7.3  # width of one character of the 12 px monospace labels, to keep them apart
_COLOURS = 6  # fault colours in the stylesheet (.f0 … .f5)
_BARS_GAP, _BARS_HEIGHT = 14, 80  # the owed-per-bucket panel under the plot
_DAY_STEPS = (1, 2, 5, 7, 10, 15, 30, 60)  # days between labels of a month's axis


@dataclass(frozen=True)
class Tick:
    """One labelled grid line: its position, its label and where the label goes."""

    at: float
    label: str
    text_x: float
    text_y: float


@dataclass(frozen=True)
class FaultMark:
    """One fault step on the chart: its window shaded across the plot (or a line for an instant
    step) and its label in a lane above the plot where it overlaps no other label."""

    label: str
    title: str
    x: float
    width: float
    instant: bool
    label_x: float
    lane_y: float
    colour: int

    @property
    def strip_y(self) -> float:
        """The top of the thin bar under the label (clear of its descenders) that spans the
        window."""
        return self.lane_y + 4

    @property
    def line_top(self) -> float:
        """Where an instant step's line starts: at its label."""
        return self.lane_y - 12


@dataclass(frozen=True)
class Bar:
    """One bucket of owed reminders under the plot, and its tooltip."""

    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Bars:
    """The owed-per-bucket panel: its bars, its top and bottom, and its title (with the
    largest bucket's count)."""

    bars: tuple[Bar, ...]
    top: float
    bottom: float
    title: str


@dataclass(frozen=True)
class Chart:
    """Everything the SVG needs, in SVG units (y grows downwards)."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    due: str
    on_time: str
    backlog: str
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    faults: tuple[FaultMark, ...]
    x_label: str = "seconds from the start of load"
    owed: Bars | None = None

    @property
    def grid_bottom(self) -> float:
        """Where the time axis's grid lines end: under the owed panel when there is one."""
        return self.bottom if self.owed is None else self.owed.bottom

    @property
    def plot_height(self) -> float:
        return self.bottom - self.top

    @property
    def x_title(self) -> tuple[float, float]:
        """Where the x axis's title goes (centred under the plot)."""
        return (self.left + self.right) / 2, self.height - 6

    @property
    def y_title(self) -> str:
        """The transform that puts the y axis's title upright beside the plot."""
        return f"translate(14 {(self.top + self.bottom) / 2:.1f}) rotate(-90)"


def step_label(fault: FaultFigures) -> str:
    """How a step is named on the chart and in the tables: `step 0 proxy.down vendors.twilio`."""
    return " ".join(part for part in (f"step {fault.step}", fault.fault, fault.link) if part)


def _nice_step(span: float, target: int) -> float:
    """A round grid step (1, 2 or 5 times a power of ten) giving about `target` intervals."""
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _number(value: float) -> str:
    return f"{value:.10g}"


def _points(pairs: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pairs)


def _lanes(extents: Sequence[tuple[float, float]]) -> list[int]:
    """The lane of each extent (in order of the list): the first lane whose last extent ends
    before this one starts, so that no two labels overlap."""
    ends: list[float] = []
    lanes: list[int] = []
    for start, end in extents:
        lane = next((i for i, last in enumerate(ends) if last + 8 <= start), len(ends))
        if lane == len(ends):
            ends.append(end)
        else:
            ends[lane] = end
        lanes.append(lane)
    return lanes


def run_chart(series: Sequence[Sample], faults: Sequence[FaultFigures],
              owed: Sequence[Bucket] = (), calendar: Calendar | None = None) -> Chart | None:
    """The chart of a run, or None when the scorecard has no samples to draw; with `owed`,
    its buckets as bars under the plot, and with a `calendar`, its days along the time axis."""
    if not series:
        return None
    times = [s.t for s in series]
    times += [f.applied_at for f in faults]
    times += [f.reverted_at for f in faults if f.reverted_at is not None]
    x_step = _nice_step(max(max(times) - min(0.0, *times), 1.0), 10)
    x_min = math.floor(min(0.0, *times) / x_step) * x_step
    x_max = math.ceil(max(times) / x_step) * x_step
    if x_max <= x_min:
        x_max = x_min + x_step
    y_top = max(max(max(s.due, s.backlog, s.on_time) for s in series), 1)
    y_step = max(_nice_step(y_top, 5), 1.0)  # counts: no grid line between two whole numbers
    y_max = math.ceil(y_top / y_step) * y_step

    left, right = float(_LEFT), float(WIDTH - _RIGHT)

    def x_of(t: float) -> float:
        return left + (t - x_min) / (x_max - x_min) * (right - left)

    ordered = sorted(faults, key=lambda f: (f.applied_at, f.step))
    marks: list[tuple[FaultFigures, float, float, float, float]] = []
    for fault in ordered:
        x = x_of(fault.applied_at)
        end = x if fault.reverted_at is None else max(x_of(fault.reverted_at), x)
        text_width = len(step_label(fault)) * _CHAR
        label_x = max(left, min(x + 3, right - text_width))
        marks.append((fault, x, end, label_x, text_width))
    lanes = _lanes([(min(x, label_x), max(end, label_x + text_width))
                    for _, x, end, label_x, text_width in marks])
    top = 12.0 + _LANE * (max(lanes) + 1 if lanes else 0)
    bottom = top + _PLOT_HEIGHT

    def y_of(count: float) -> float:
        return bottom - count / y_max * _PLOT_HEIGHT

    fault_marks = tuple(
        FaultMark(label=step_label(fault), title=_window(fault), x=round(x, 1),
                  width=round(end - x, 1), instant=fault.reverted_at is None,
                  label_x=round(label_x, 1), lane_y=8.0 + _LANE * lane + 12,
                  colour=fault.step % _COLOURS)
        for (fault, x, end, label_x, _), lane in zip(marks, lanes, strict=True))
    ordered_series = sorted(series, key=lambda s: s.t)
    backlog = ([(x_of(ordered_series[0].t), bottom)]
               + [(x_of(s.t), y_of(s.backlog)) for s in ordered_series]
               + [(x_of(ordered_series[-1].t), bottom)])
    bars = _bars(owed, x_of, bottom, calendar) if owed else None
    labels_y = (bars.bottom if bars else bottom) + 16
    x_ticks = []
    if calendar is None:
        for i in range(round((x_max - x_min) / x_step) + 1):
            x = round(x_of(x_min + i * x_step), 1)
            x_ticks.append(Tick(x, _number(x_min + i * x_step), x, labels_y))
    else:
        x_ticks = _day_ticks(calendar, x_min, x_max, x_of, labels_y)
    y_ticks = []
    for i in range(round(y_max / y_step) + 1):
        y = round(y_of(i * y_step), 1)
        y_ticks.append(Tick(y, _number(i * y_step), left - 6, y + 4))
    x_label = "seconds from the start of load" if calendar is None else (
        f"calendar days of the compressed month (a day is {DAY / calendar.speed:.3g} s)")
    return Chart(width=WIDTH, height=round(labels_y - 16 + _BOTTOM), left=left, right=right,
                 top=top, bottom=bottom, x_label=x_label, owed=bars,
                 due=_points([(x_of(s.t), y_of(s.due)) for s in ordered_series]),
                 on_time=_points([(x_of(s.t), y_of(s.on_time)) for s in ordered_series]),
                 backlog=_points(backlog), x_ticks=tuple(x_ticks), y_ticks=tuple(y_ticks),
                 faults=fault_marks)


def _window(fault: FaultFigures) -> str:
    """The tooltip of a fault mark: when it acted and what it touched."""
    when = (f"at {fault.applied_at:.1f} s" if fault.reverted_at is None
            else f"from {fault.applied_at:.1f} s to {fault.reverted_at:.1f} s")
    return f"{step_label(fault)}: {when}; touched {fault.touched} ({fault.effect})"


def _bars(owed: Sequence[Bucket], x_of: Callable[[float], float], plot_bottom: float,
          calendar: Calendar | None) -> Bars:
    """The owed-per-bucket panel under a plot ending at `plot_bottom`."""
    top = plot_bottom + _BARS_GAP
    bottom = top + _BARS_HEIGHT
    most = max(max(bucket.owed for bucket in owed), 1)
    bars = []
    for bucket in owed:
        # The tallest bar stops under the panel's title.
        height = bucket.owed / most * (_BARS_HEIGHT - 16)
        x, end = x_of(bucket.start), x_of(bucket.end)
        when = bucket.label or f"{_number(bucket.start)}-{_number(bucket.end)} s"
        bars.append(Bar(x=round(x, 1), y=round(bottom - height, 1),
                        width=round(max(end - x - 1, 0.5), 1), height=round(height, 1),
                        title=f"{when}: {bucket.owed} owed"))
    size = "calendar day" if calendar else f"{_number(owed[0].end - owed[0].start)} s"
    return Bars(bars=tuple(bars), top=top, bottom=bottom,
                title=f"owed per {size} (most: {most})")


def _day_ticks(calendar: Calendar, x_min: float, x_max: float,
               x_of: Callable[[float], float], labels_y: float) -> list[Tick]:
    """Grid lines at the compressed month's midnights, every few days (a dozen labels at
    most), each labelled with its date."""
    first = calendar.at(x_min).replace(hour=0, minute=0, second=0, microsecond=0)
    span_days = (x_max - x_min) * calendar.speed / DAY
    step = next((days for days in _DAY_STEPS if span_days / days <= 12), _DAY_STEPS[-1])
    ticks = []
    day = first
    while (t := (day - calendar.start).total_seconds() / calendar.speed) <= x_max:
        if t >= x_min:
            x = round(x_of(t), 1)
            ticks.append(Tick(x, f"{day:%b} {day.day}", x, labels_y))
        day += timedelta(days=step)
    return ticks
