"""Mail server mock (SMTP, aiosmtpd): records every message, with greylisting, rejection, a slow
DATA and the reply lost after DATA as faults."""

from __future__ import annotations

from mocks.channels import ChannelDeps, ChannelServer

CREDENTIAL_KEYS = ("username", "password")
VALUES = ("from",)


async def start(deps: ChannelDeps) -> ChannelServer:
    raise NotImplementedError("the mail server mock is being written")
