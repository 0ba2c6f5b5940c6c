"""The load generator gets the run's token in its environment (for the ledger's /admin), never on
its command line, which any local user can read."""

from __future__ import annotations

from pathlib import Path

from harness.loadgen import LOCUSTFILE, TOKEN_ENV, LoadGenerator
from harness.processes import poll_until
from harness.scenario import load_scenario
from mocks.manifest import TOKEN_HEADER
from tests.conftest import ROOT

TOKEN = "a-token-for-this-test-only-0123456789"


def test_locust_has_the_token_in_its_environment_and_not_in_its_argv(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "primary-vendor-outage.yaml")
    load = LoadGenerator(scenario, "http://127.0.0.1:9", tmp_path, TOKEN)
    try:
        proc = Path("/proc") / str(load.process.pid)

        def execed() -> str | None:
            # Until exec, the child's /proc shows the harness's command line and environment.
            argv = (proc / "cmdline").read_bytes().decode()
            return argv if "locust" in argv else None

        argv = poll_until(execed, timeout=20)
        assert argv is not None
        environ = (proc / "environ").read_bytes().split(b"\0")
    finally:
        load.stop()
    assert TOKEN not in argv
    assert f"{TOKEN_ENV}={TOKEN}".encode() in environ


def test_the_locustfile_sends_the_token_in_the_header_the_mocks_check() -> None:
    text = LOCUSTFILE.read_text(encoding="utf-8")

    assert f'{{"{TOKEN_HEADER}": os.environ.get("{TOKEN_ENV}"' in text
