"""Push service mock (FCM HTTP v1): OAuth2 tokens for a service account, `messages:send`, FCM's
own errors (UNREGISTERED, QUOTA_EXCEEDED, UNAVAILABLE)."""

from __future__ import annotations

from mocks.channels import ChannelDeps, ChannelServer

CREDENTIAL_KEYS = ()
VALUES = ("project", "credentials_file")


async def start(deps: ChannelDeps) -> ChannelServer:
    raise NotImplementedError("the push service mock is being written")
