"""Which vendor wire formats the mocks speak: kind → module, and each kind's credentials.

A vendor module defines `CREDENTIAL_KEYS`, `issue_credentials(rng)` and `create_app(vendor)`.
"""

from __future__ import annotations

import importlib
import random
from types import ModuleType

MODULES: dict[str, str] = {
    "twilio": "mocks.twilio",
    "aliyun": "mocks.aliyun",
}

def vendor_module(kind: str) -> ModuleType:
    """The module that speaks vendor `kind`'s wire format."""
    return importlib.import_module(MODULES[kind])


def credential_keys(kind: str) -> tuple[str, ...]:
    """The names of the credentials vendor `kind` issues (placeholders may use them)."""
    keys: tuple[str, ...] = vendor_module(kind).CREDENTIAL_KEYS
    return keys


def pick(rng: random.Random, alphabet: str, n: int) -> str:
    """`n` characters of `alphabet` drawn from `rng` (so a seed repeats credentials)."""
    return "".join(rng.choice(alphabet) for _ in range(n))


def issue_credentials(kind: str, rng: random.Random) -> dict[str, str]:
    """Fresh credentials in vendor `kind`'s own shape."""
    credentials: dict[str, str] = vendor_module(kind).issue_credentials(rng)
    return credentials
