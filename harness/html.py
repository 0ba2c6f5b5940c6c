"""The scorecard as one self-contained HTML page, for people who were not watching the run."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from harness.continuity import Scorecard

_TEMPLATES = Environment(loader=PackageLoader("harness"), autoescape=select_autoescape(),
                         keep_trailing_newline=True)


def html_report(card: Scorecard) -> str:
    """The page: verdict, continuity and outcomes, latency, faults, gates."""
    return _TEMPLATES.get_template("report.html.j2").render(card=card)
