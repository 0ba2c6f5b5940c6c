"""The reports of a run with several channels: the channel mix overall and per fault step,
pii_exposed and missing_optout_notice in the console summary, report.html and scorecard.json;
a run with SMS alone shows no channel mix."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rich.console import Console

from harness.continuity import score
from harness.report import summary, write_reports
from harness.scorecard import Scorecard
from tests.harness.journals import journal, owed, scenario, sent, step
from tests.harness.test_channels_scoring import RUN, due, mailed, pushed


def channel_card() -> Scorecard:
    return score(journal(
        step(0, "proxy.down", "vendors.sms", 20, 40),
        due("AAAAAAAA", 0), sent("AAAAAAAA", 1),
        due("BBBBBBBB", 5), pushed("BBBBBBBB", 6),
        due("CCCCCCCC", 25), sent("CCCCCCCC", 26, handset="dropped"), pushed("CCCCCCCC", 27),
        due("DDDDDDDD", 30), mailed("DDDDDDDD", 45, body="ref:DDDDDDDD amount:100.00 "
                                    "due:2026-12-05 致电 +86 138 0000 0001"),
        end=400, run=RUN))


def console_text(card: Scorecard) -> str:
    console = Console(width=200, record=True)
    console.print(summary(card))
    return console.export_text()


def words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_console_shows_the_channel_mix_and_compliance() -> None:
    text = console_text(channel_card())
    assert ("channel mix: sms 1, push 2, email 1 (outside faults: sms 50.00%, push 50.00%, "
            "email 0.00%)") in text
    assert re.search(r"personal data shown +1\b", text)
    assert re.search(r"without the opt-out notice +0\b", text)
    assert re.search(r"delivered by\s*\n0 +2 .* sms 0, push 1, email 1", text)


def test_the_page_and_the_scorecard_show_the_channel_mix(tmp_path: Path) -> None:
    card = channel_card()
    written = json.loads(write_reports(tmp_path, card).read_text())
    assert written["channel_mix"] == {"sms": 1, "push": 2, "email": 1}
    assert (written["sms_share"], written["push_share"], written["email_share"]) == (
        0.5, 0.5, 0.0)
    assert written["faults"][0]["channels_exposed"] == {"sms": 0, "push": 1, "email": 1}
    assert written["pii_exposed"] == 1
    page = words((tmp_path / "report.html").read_text())
    assert ("channel delivered share outside faults sms 1 50.00% push 2 50.00% email 1 0.00%"
            in page)
    assert "duplicates by sms by push by email step 0 proxy.down vendors.sms 2" in page
    assert "1 messages showed personal data beyond what the scenario allows" in page
    assert "sent at vendor channel to handset" in page
    assert re.search(r"\bpush fZx1-token-of-B1:APA91bHn0tR3al delivered\b", page)
    assert "on time; showed phone" in page


def test_a_run_with_sms_alone_shows_no_channel_mix(tmp_path: Path) -> None:
    card = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1), run=scenario()))
    assert "channel mix" not in console_text(card)
    write_reports(tmp_path, card)
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Channels</h2>" not in html and "sent at vendor to handset" in words(html)
    assert "by sms" not in html
