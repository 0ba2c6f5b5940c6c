"""A real run keeps its secrets: every secret it used (each vendor's secret credentials, the run's
token, Basic auth made of them) is found in no file of its run folder but the two owner-only
files meant to hold them, nor in what the CLI printed; and the run's own control calls (Locust's
ticks, the fault switches) went through with its token."""

from __future__ import annotations

import base64
import json
import stat
from urllib.parse import quote

import pytest

from harness.journal import FaultApplied, LoadFinished, MockFaultsChanged, ReminderScheduled
from mocks.catalogue import all_secret_keys
from tests.e2e.conftest import ROOT, finish, start

pytestmark = pytest.mark.e2e

HOLDERS = {"mocks-config.json", "mocks-manifest.json"}
"""The files of a run folder that hold its secrets (owner-only)."""

# Twilio refuses for 6 s (switched through its control API), the ledger's replica repeats
# records for 4 s (switched through the ledger's): both need the run's token.
TIMELINE = ("timeline=[{at: 5s, for: 6s, fault: vendor.outage, link: vendors.twilio}, "
            "{at: 4s, for: 4s, fault: data.duplicate, link: ledger}]")


def secrets_of(manifest: dict[str, object]) -> dict[str, str]:
    """Every secret a run used, by name, in the forms it could leak in: as is, URL-quoted, and
    in HTTP Basic auth with each of its vendor's other credentials."""
    found = {"token": str(manifest["token"])}
    vendors = manifest["vendors"]
    assert isinstance(vendors, dict)
    for name, vendor in vendors.items():
        credentials: dict[str, str] = vendor["credentials"]
        for key, secret in credentials.items():
            if key not in all_secret_keys():
                continue
            found[f"{name}.{key}"] = secret
            found[f"{name}.{key}, quoted"] = quote(secret, safe="")
            for other, value in credentials.items():
                if other != key:
                    basic = base64.b64encode(f"{value}:{secret}".encode()).decode()
                    found[f"{name}.{key} in Basic auth with {other}"] = basic
    return found


def test_no_secret_of_a_run_is_left_outside_its_owner_only_files(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.mktemp("secrets")
    run = finish(start("run", ROOT / "scenarios" / "primary-vendor-outage.yaml", "--out", out,
                       "--set", "duration=20s", "--set", TIMELINE), out, timeout=240)
    assert run.run_dir is not None, run.stdout + run.stderr
    assert run.code != 2, run.stdout + run.stderr  # the run ran (its verdict is not the point)

    manifest = json.loads((run.run_dir / "mocks-manifest.json").read_text(encoding="utf-8"))
    secrets = secrets_of(manifest)
    assert {name.split(".")[0] for name in secrets} >= {"token", "twilio", "aliyun"}
    files = sorted(path for path in run.run_dir.rglob("*") if path.is_file())
    assert {"journal", "logs", "load"} <= {p.relative_to(run.run_dir).parts[0] for p in files}
    assert {"report.html", "scorecard.json", "junit.xml"} <= {p.name for p in files}

    leaks = [(str(path.relative_to(run.run_dir)), name) for path in files
             if path.name not in HOLDERS
             for name, value in secrets.items() if value.encode() in path.read_bytes()]
    leaks += [(stream, name) for stream, text in (("stdout", run.stdout), ("stderr", run.stderr))
              for name, value in secrets.items() if value in text]
    assert leaks == []

    for holder in HOLDERS:  # the files meant to hold them do, for replay, owner-only
        path = run.run_dir / holder
        assert manifest["token"] in path.read_text(encoding="utf-8")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, holder
    assert secrets["twilio.auth_token"] in (run.run_dir / "mocks-manifest.json").read_text()

    journal = run.journal()
    [load] = journal.of(LoadFinished)
    assert load.requests > 0 and load.failures == 0  # every tick carried the token
    assert len(journal.of(ReminderScheduled)) == load.requests
    assert [step.fault for step in journal.of(FaultApplied)] == ["data.duplicate",
                                                                 "vendor.outage"]
    switched = {(change.mock, tuple(change.faults)) for change in journal.of(MockFaultsChanged)}
    assert {("twilio", ("outage",)), ("ledger", ("duplicate",))} <= switched

