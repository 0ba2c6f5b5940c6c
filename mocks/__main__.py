"""`python -m mocks CONFIG MANIFEST`: serve the mocks described in CONFIG, write MANIFEST."""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path

import uvloop

from mocks.manifest import MocksConfig
from mocks.server import serve


def main(argv: list[str]) -> int:
    """Entry point of the mock process the harness starts."""
    if len(argv) != 2:
        print("usage: python -m mocks CONFIG.json MANIFEST.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = MocksConfig.model_validate_json(Path(argv[0]).read_text(encoding="utf-8"))
    # Once serving, what start-up built lives as long as the process: frozen, the collector
    # stops walking it, and its full collections shrink (measured under bench/run's load).
    uvloop.run(serve(config, Path(argv[1]), on_ready=lambda _: gc.freeze()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
