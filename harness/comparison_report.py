"""Reports of a comparison: `compare.json`, `compare.html` and the console's side-by-side table."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from harness.comparison import SHOWN_LOST, Comparison, FigureRow

# autoescape always, as the run's report: every value on the page comes from the runs.
_TEMPLATES = Environment(loader=PackageLoader("harness"), autoescape=True,
                         keep_trailing_newline=True)

_STYLES = {"worse": "bold red", "lost": "bold red", "within margin": "yellow",
           "better": "green", "gained": "green", "same": "", "not judged": "dim",
           "shown": "dim"}


def value_text(row: FigureRow, value: float | None, signed: bool = False) -> str:
    """A figure's value (or difference, `signed`) in its unit: `98.50%`, `1.20 s`, `3`."""
    if value is None:
        return "-"
    sign = "+" if signed and value > 0 else ""
    if row.unit == "share":
        return f"{sign}{value:.2%}"
    if row.unit == "seconds":
        return f"{sign}{value:.2f} s"
    return f"{sign}{value:g}"


def _figures(comparison: Comparison) -> Table:
    table = Table("figure", "baseline", "rehearsal", "difference", "margin", "verdict",
                  box=None, pad_edge=False)
    for row in comparison.figures:
        table.add_row(row.figure, value_text(row, row.baseline), value_text(row, row.rehearsal),
                      value_text(row, row.difference, signed=True), row.margin or "-",
                      Text(row.verdict, _STYLES[row.verdict]))
    return table


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _reminders_line(comparison: Comparison) -> Text:
    only = []
    if comparison.only_baseline:
        only.append(f"{len(comparison.only_baseline)} scheduled only by the baseline "
                    f"({comparison.owed_only_baseline} owed)")
    if comparison.only_rehearsal:
        only.append(f"{len(comparison.only_rehearsal)} scheduled only by the rehearsal "
                    f"({comparison.owed_only_rehearsal} owed)")
    return Text(f"reminders: {comparison.compared} scheduled by both "
                f"({comparison.owed_in_both} owed by both), {len(comparison.changed)} changed "
                f"outcome ({_count(len(comparison.changed_borrowers), 'borrower')})"
                + "".join(f"; {part}" for part in only))


def comparison_summary(comparison: Comparison) -> Group:
    """What a person reads: both runs, the figures side by side, the changed reminders (the
    lost ones first, at most `SHOWN_LOST` of each kind) and the verdict."""
    parts: list[RenderableType] = []
    for label, side in (("baseline", comparison.baseline), ("rehearsal", comparison.rehearsal)):
        parts.append(Text.assemble((f"{label} ", "bold"), f"{side.run}: {side.scenario} "
                                   f"({side.verdict}; {side.provenance})"))
    parts += [_figures(comparison), _reminders_line(comparison)]
    lost, other = comparison.lost, [r for r in comparison.changed if not r.lost]
    for title, rows in (("lost", lost), ("changed", other)):
        if not rows:
            continue
        table = Table("reminder", "ref", "borrower", "baseline", "rehearsal", box=None,
                      pad_edge=False, title=f"{title} ({len(rows)})", title_justify="left")
        for reminder in rows[:SHOWN_LOST]:
            table.add_row(reminder.reminder_id, reminder.ref, reminder.borrower_id,
                          reminder.baseline, reminder.rehearsal)
        parts.append(table)
        if len(rows) > SHOWN_LOST:
            parts.append(Text(f"... and {len(rows) - SHOWN_LOST} more (all in compare.json)",
                              "dim"))
    if comparison.worse:
        parts.append(Text("WORSE than the baseline", "bold red"))
        parts.extend(Text(f"  {reason}", "red") for reason in comparison.reasons)
    else:
        parts.append(Text("NOT WORSE than the baseline", "bold green"))
    return Group(*parts)


def comparison_html(comparison: Comparison) -> str:
    """The comparison as one self-contained HTML page."""
    return _TEMPLATES.get_template("compare.html.j2").render(
        comparison=comparison, value=value_text)


def write_comparison(folder: Path, comparison: Comparison) -> tuple[Path, Path]:
    """Write `compare.json` and `compare.html` into `folder` (made if need be); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    data, page = folder / "compare.json", folder / "compare.html"
    data.write_text(comparison.model_dump_json(indent=2) + "\n", encoding="utf-8")
    page.write_text(comparison_html(comparison), encoding="utf-8")
    return data, page
