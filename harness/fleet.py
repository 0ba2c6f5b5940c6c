"""`notifychaos mocks up`: the mock fleet in the foreground, for trying a notifier by hand."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from harness.scenario import load_scenario
from mocks.catalogue import MODULES
from mocks.channels import CHANNEL_MODULES
from mocks.manifest import TOKEN_HEADER, Manifest, MocksConfig, VendorConfig
from mocks.server import serve

DEMO_TEMPLATES = {
    "SMS_REPAYMENT_REMINDER": "尊敬的${name}，您的房贷本期还款${amount}元将于${due_date}到期，"
                              "请按时还款。ref:${ref}",
}


def fleet_config(state: Path, scenario: Path | None, seed: int) -> MocksConfig:
    """The vendors of `scenario`, or one of each kind the mocks speak, journaling into `state`,
    with a fresh token."""
    if scenario is not None:
        model = load_scenario(scenario)
        return MocksConfig(seed=model.seed, window=model.reminders.window,
                           lead=model.reminders.lead, population=model.population,
                           changes=model.changes, journal_dir=str(state / "journal"),
                           vendors=model.vendors, handsets=model.handsets,
                           channels=list(model.channels), app=model.app is not None,
                           run_dir=str(state))
    vendors = {kind: VendorConfig(kind=kind, templates=DEMO_TEMPLATES) for kind in MODULES}
    return MocksConfig(seed=seed, journal_dir=str(state / "journal"), vendors=vendors,
                       channels=list(CHANNEL_MODULES), app=True, run_dir=str(state))


def describe(manifest: Manifest) -> str:
    """Each mock's address, credentials and control URLs, and the token the control URLs and
    the ledger's /admin want, for a person to copy from."""
    lines = [f"ledger   {manifest.ledger_url}", f"alerts   {manifest.alerts_url}",
             f"token    {manifest.token}   (header {TOKEN_HEADER}: faults, sends, /admin)"]
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
    config = fleet_config(state, scenario, seed)

    def ready(manifest: Manifest) -> None:
        console.print(describe(manifest), markup=False)
        console.print(f"manifest: {manifest_path}\ntest CA (HTTPS vendors): {manifest.ca_bundle}"
                      f"\nrecord of sends: {state / 'journal' / 'mocks.jsonl'}\nCtrl-C to stop.")

    asyncio.run(serve(config, manifest_path, ready))
    return manifest_path
