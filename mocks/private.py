"""Writes files that hold a run's secrets: owner-only (0600) from their first byte, atomically."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8), readable and writable by its owner only.

    Written to a sibling created with mode 0600 and renamed over `path`: no reader ever sees
    a partial file, and there is no moment at which the secret is world-readable.
    """
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        # The mode given to open() is masked by the umask; 0600 must hold whatever it is.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    partial.replace(path)
