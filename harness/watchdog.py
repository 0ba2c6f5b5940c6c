"""A run's watchdog: waits for its harness to end, then stops what survived it and seals the run.

`python -m harness.watchdog RUN_LOCK` with the reading end of the harness's pipe as stdin: the
pipe ends when the harness exits, however it exits. A harness that ended its run cleanly has
removed the lock first, and the watchdog has nothing to do.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from harness.runlock import recover


def main(lock: Path) -> None:
    """Wait for the end of stdin, then recover the run if its lock is still there."""
    # Ctrl-C and a closed terminal are for the harness: the watchdog must outlive it.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    while os.read(sys.stdin.fileno(), 4096):
        pass
    if lock.exists():
        # The pipe ends as the harness's files close, a moment before its process is gone.
        line = recover(lock.parent, holder_gone=True)
        if line is not None:
            print(f"notifychaos watchdog: {line}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
