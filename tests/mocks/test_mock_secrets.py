"""A run's secrets: credentials fresh per run (never drawn from the seed), and the files that
hold them (the mocks' config and manifest) readable by their owner only, from their first byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from mockkit import Mocks

from mocks.catalogue import (
    MODULES,
    all_secret_keys,
    credential_keys,
    issue_credentials,
    secret_keys,
)
from mocks.private import write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_two_mock_processes_with_one_seed_issue_different_credentials(
        mocks: Mocks, fresh_mocks: Mocks) -> None:
    first, second = mocks.manifest.vendors, fresh_mocks.manifest.vendors

    assert sorted(first) == sorted(second)
    for name, vendor in first.items():
        other = second[name].credentials
        assert vendor.credentials.keys() == other.keys()
        for key in vendor.credentials.keys() & all_secret_keys():
            assert vendor.credentials[key] != other[key], (name, key)
    assert mocks.manifest.token == fresh_mocks.manifest.token  # the tests gave both one token


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_credentials_are_fresh_on_every_issue_and_some_are_secrets(kind: str) -> None:
    issued = [issue_credentials(kind) for _ in range(3)]

    assert all(credentials.keys() == set(credential_keys(kind)) for credentials in issued)
    secrets = secret_keys(kind)
    assert secrets, f"{kind} issues no secret"
    assert secrets <= set(credential_keys(kind))
    for key in secrets:
        assert len({credentials[key] for credentials in issued}) == 3, key


def test_the_secret_keys_are_those_each_vendor_module_declares() -> None:
    assert all_secret_keys() == frozenset().union(*map(secret_keys, MODULES))
    assert {"auth_token", "api_secret", "secret_access_key"} <= all_secret_keys()
    assert not {"account_sid", "api_key", "access_key_id"} & all_secret_keys()


def test_the_manifest_with_credentials_and_token_is_owner_only(mocks: Mocks) -> None:
    manifest = mocks.journal_dir.parent / "manifest.json"

    assert mocks.manifest.token in manifest.read_text(encoding="utf-8")
    assert mode(manifest) == 0o600
    assert mode(Path(mocks.manifest.ca_bundle)) & 0o044  # the CA's certificate is public
    assert not list(manifest.parent.glob(".manifest.json*"))  # no partial left behind


def test_a_private_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    old = os.umask(0)
    try:
        write_private(path, "one")
    finally:
        os.umask(old)

    assert (path.read_text(encoding="utf-8"), mode(path)) == ("one", 0o600)


def test_a_private_file_replaces_a_readable_one_and_is_never_readable_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.json"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o644)
    seen: list[tuple[int, str]] = []
    replace = Path.replace

    def spy(self: Path, target: Path) -> Path:
        seen.append((mode(self), self.read_text(encoding="utf-8")))
        return replace(self, target)

    monkeypatch.setattr(Path, "replace", spy)
    write_private(path, "new secret")

    assert seen == [(0o600, "new secret")]  # whole, and owner-only, before it has the name
    assert (path.read_text(encoding="utf-8"), mode(path)) == ("new secret", 0o600)
    assert [p.name for p in tmp_path.iterdir()] == ["secret.json"]
