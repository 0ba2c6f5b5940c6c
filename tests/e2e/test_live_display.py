"""The live display on a real terminal (a tmux pane, captured while the run goes) and in a log."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None,
                       reason="tmux is not installed (apt-get install tmux): no terminal to "
                       "capture the live panel from"),
]

ARGS = ["run", "scenarios/phone-changes-during-outage.yaml", "--set", "duration=15s",
        "--set", "timeline=[{at: 3s, for: 8s, fault: proxy.down, link: vendors.twilio}]"]
TOTAL = "40s"  # 15 s of load and at most the scenario's drain (lead + window: 25 s)
EXITED = "notifychaos-exit="


def tmux(socket: str, *args: str) -> str:
    """A tmux command on the test's own server (never a person's own)."""
    return subprocess.run(["tmux", "-L", socket, *args], check=True, capture_output=True,
                          text=True, timeout=10).stdout


def wait_for_screen(socket: str, wanted: list[str], timeout: float) -> str:
    """Capture the pane until it matches every pattern of `wanted`; the capture that did."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux(socket, "capture-pane", "-p", "-t", "live")
        if all(re.search(pattern, screen) for pattern in wanted):
            return screen
        time.sleep(0.25)
    pytest.fail(f"the pane never showed {wanted} within {timeout}s; it last showed:\n{screen}")


def test_the_live_panel_shows_on_a_terminal_and_plain_lines_in_a_log(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    with log.open("w", encoding="utf-8") as file:
        to_file = subprocess.Popen(
            [sys.executable, "-m", "harness", *ARGS, "--out", str(tmp_path / "logged")],
            cwd=ROOT, stdout=file, stderr=subprocess.STDOUT, start_new_session=True)
    socket = f"notifychaos-test-{os.getpid()}"
    command = shlex.join([sys.executable, "-m", "harness", *ARGS,
                          "--out", str(tmp_path / "terminal")])
    try:
        tmux(socket, "new-session", "-d", "-s", "live", "-x", "150", "-y", "50", "-c",
             str(ROOT), f"{command}; echo {EXITED}$?; sleep 600")
        # Seen during the fault, once reminders are due: every figure of the panel.
        wait_for_screen(socket, [
            "notifychaos · phone-changes-during-outage", rf"elapsed +\d+s / {TOTAL} \(load",
            r"faults now +step 0 proxy\.down on vendors\.twilio for \d+s",
            r"due so far [1-9]\d* · on time so far \d+ · in flight \d+",
            r"continuity +\d+\.\d% so far", r"requests [1-9]\d* · failures known when"],
            timeout=60)
        wait_for_screen(socket, [re.escape(EXITED)], timeout=120)
        after = tmux(socket, "capture-pane", "-p", "-S", "-", "-t", "live")  # and scrollback
        assert f"{EXITED}0" in after, after
        # The panel's last figures stay above the summary: the fault is over, the load ended.
        assert re.search(r"faults now +none", after), after
        assert re.search(r"requests [1-9]\d* · failures 0", after), after
        assert after.index("faults now") < after.index("notifier gates"), after
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
        try:
            to_file.wait(timeout=120)
        finally:
            if to_file.poll() is None:
                os.killpg(to_file.pid, 9)
                to_file.wait()
    text = log.read_text(encoding="utf-8")
    assert to_file.returncode == 0, text
    assert "\x1b" not in text
    assert "faults now" not in text  # no panel in a log
    lines = re.findall(rf"^\[ *(\d+)s/{TOTAL}\] due \d+ on time \d+ .*faults: (.*)$", text,
                       re.MULTILINE)
    # One line every 10 s until the drain ends, once every reminder is decided (before 30 s).
    assert [int(at) for at, _ in lines][:2] == [10, 20], text
    assert lines[0][1] == "step 0 proxy.down vendors.twilio", text
    assert lines[-1][1] == "none", text
