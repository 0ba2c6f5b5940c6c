"""Which vendor wire formats the mocks speak: kind → module, and each kind's credentials.

A vendor module defines `CREDENTIAL_KEYS`, `SECRET_KEYS` (those of them that are secrets; the
others name an account, a key or a sender, and travel in the clear in the vendor's own requests),
`issue_credentials(rng)` and `create_app(vendor)`, and `TLS = True` if the vendor's SDK only
speaks HTTPS (the mock then serves a per-run test CA).
Credentials are drawn from the operating system's randomness, never from the run's seed: every
run has secrets of its own (the manifest records them for replay).
"""

from __future__ import annotations

import functools
import importlib
import random
from types import ModuleType

MODULES: dict[str, str] = {
    "twilio": "mocks.twilio",
    "vonage": "mocks.vonage",
    "aliyun": "mocks.aliyun",
    "tencent": "mocks.tencent",
    "sns": "mocks.sns",
}


def vendor_module(kind: str) -> ModuleType:
    """The module that speaks vendor `kind`'s wire format."""
    return importlib.import_module(MODULES[kind])


def credential_keys(kind: str) -> tuple[str, ...]:
    """The names of the credentials vendor `kind` issues (placeholders may use them)."""
    keys: tuple[str, ...] = vendor_module(kind).CREDENTIAL_KEYS
    return keys


def secret_keys(kind: str) -> frozenset[str]:
    """The names of vendor `kind`'s credentials that are secrets."""
    keys: frozenset[str] = vendor_module(kind).SECRET_KEYS
    return keys


@functools.cache
def all_secret_keys() -> frozenset[str]:
    """The names of every vendor's secret credentials. A function, not a constant: the vendor
    modules import this one, so their union can only be taken once they are all loaded."""
    return frozenset().union(*map(secret_keys, MODULES))


def pick(rng: random.Random, alphabet: str, n: int) -> str:
    """`n` characters of `alphabet` drawn from `rng`."""
    return "".join(rng.choice(alphabet) for _ in range(n))


def issue_credentials(kind: str) -> dict[str, str]:
    """Fresh credentials in vendor `kind`'s own shape, unpredictable (not from any seed)."""
    credentials: dict[str, str] = vendor_module(kind).issue_credentials(random.SystemRandom())
    return credentials


def serves_tls(kind: str) -> bool:
    """Whether vendor `kind`'s mock must be reached over HTTPS."""
    return bool(getattr(vendor_module(kind), "TLS", False))
