"""Child processes the harness manages: stopped for good, and reaped."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from harness.processes import ManagedProcess


def test_a_kill_without_grace_still_reaps_the_child(tmp_path: Path) -> None:
    child = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                           log_path=tmp_path / "sleeper.log")
    # A crash as process.kill makes it: SIGKILL at once. The exit status must be collected, or
    # the zombie's Popen warns when the harness drops it (a restarted target replaces it).
    assert child.stop(grace=0, signum=signal.SIGKILL) == -signal.SIGKILL
