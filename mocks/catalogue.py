"""Which vendor wire formats the mocks speak, and the credentials each issues per run."""

from __future__ import annotations

import random
import string

CREDENTIAL_KEYS: dict[str, tuple[str, ...]] = {
    "twilio": ("account_sid", "auth_token", "from"),
    "aliyun": ("access_key_id", "access_key_secret"),
}


def issue_credentials(kind: str, rng: random.Random) -> dict[str, str]:
    """Fresh credentials in the vendor's own shape, drawn from `rng` (so a seed repeats them)."""

    def pick(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    hexdigits = "0123456789abcdef"
    if kind == "twilio":
        return {
            "account_sid": "AC" + pick(hexdigits, 32),
            "auth_token": pick(hexdigits, 32),
            "from": "+1500555" + pick(string.digits, 4),
        }
    if kind == "aliyun":
        return {
            "access_key_id": "LTAI" + pick(string.ascii_letters + string.digits, 20),
            "access_key_secret": pick(string.ascii_letters + string.digits, 30),
        }
    raise ValueError(f"unknown vendor kind {kind!r}")
