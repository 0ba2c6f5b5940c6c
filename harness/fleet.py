"""`notifychaos mocks up`: the mock fleet in the foreground, for trying a notifier by hand."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.console import Console

from harness.clock import ENV, Clock, staging
from harness.scenario import Scenario, load_scenario
from mocks.catalogue import MODULES
from mocks.channels import CHANNEL_MODULES
from mocks.manifest import TOKEN_HEADER, Manifest, MocksConfig, VendorConfig
from mocks.server import serve

DEMO_TEMPLATES = {
    "SMS_REPAYMENT_REMINDER": "尊敬的${name}，您的房贷本期还款${amount}元将于${due_date}到期，"
                              "请按时还款。ref:${ref}",
}


def fleet_config(state: Path, scenario: Scenario | None, seed: int,
                 clock: Clock | None = None) -> MocksConfig:
    """The vendors of `scenario`, or one of each kind the mocks speak, journaling into `state`,
    with a fresh token; a staged month's ledger on `clock`."""
    if scenario is not None:
        return MocksConfig(seed=scenario.seed, window=scenario.reminders.window,
                           lead=scenario.reminders.lead, population=scenario.population,
                           changes=scenario.changes, journal_dir=str(state / "journal"),
                           vendors=scenario.vendors, handsets=scenario.handsets,
                           channels=list(scenario.channels), app=scenario.app is not None,
                           run_dir=str(state),
                           staging=staging(scenario, clock.epoch if clock else None))
    vendors = {kind: VendorConfig(kind=kind, templates=DEMO_TEMPLATES) for kind in MODULES}
    return MocksConfig(seed=seed, journal_dir=str(state / "journal"), vendors=vendors,
                       channels=list(CHANNEL_MODULES), app=True, run_dir=str(state))


def describe(manifest: Manifest, clock: Clock | None = None) -> str:
    """Each mock's address, credentials and control URLs, the token the control URLs and the
    ledger's /admin want, and a month's clock for the notifier, for a person to copy from."""
    lines = [f"ledger   {manifest.ledger_url}", f"alerts   {manifest.alerts_url}",
             f"token    {manifest.token}   (header {TOKEN_HEADER}: faults, sends, /admin)"]
    if clock is not None:
        values = clock.values()
        lines.append("clock    " + " ".join(
            f"{name}={values[placeholder.strip('{}')]}" for name, placeholder in ENV.items())
            + "   (the scenario's month, from now: the notifier's environment)")
    for name, vendor in manifest.vendors.items():
        lines.append(f"{name} ({vendor.kind})   {vendor.url}")
        lines += [f"    {key} = {value}" for key, value in vendor.credentials.items()]
        lines += [f"    faults: {vendor.control_url}", f"    sends:  {vendor.sends_url}"]
    for kind, channel in manifest.channels.items():
        lines.append(f"{kind}   {channel.url}")
        lines += [f"    {key} = {value}" for key, value in
                  {**channel.credentials, **channel.values}.items()]
        lines.append(f"    faults: {channel.control_url}")
    return "\n".join(lines)


def mocks_up(state: Path, scenario: Path | None, seed: int, console: Console) -> Path:
    """Serve the fleet until Ctrl-C; returns the manifest's path."""
    state.mkdir(parents=True, exist_ok=True)
    manifest_path = state / "mocks-manifest.json"
    model = None if scenario is None else load_scenario(scenario)
    month = None if model is None else model.reminders.month
    # The month begins as the fleet comes up: ticks by hand fall due on its calendar from then.
    clock = None if model is None or month is None else Clock.of(month, model.duration,
                                                                 time.time())
    config = fleet_config(state, model, seed, clock)

    def ready(manifest: Manifest) -> None:
        console.print(describe(manifest, clock), markup=False)
        console.print(f"manifest: {manifest_path}\ntest CA (HTTPS vendors): {manifest.ca_bundle}"
                      f"\nrecord of sends: {state / 'journal' / 'mocks.jsonl'}\nCtrl-C to stop.")

    asyncio.run(serve(config, manifest_path, ready))
    return manifest_path
