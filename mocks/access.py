"""Who may use the mocks' control APIs: only a caller with the run's token (TOKEN_HEADER).

Which paths are protected is `mocks.paths.needs_token`. The vendor APIs, the ledger's pull API
and the alert sink's intake stay open: the notifier under test uses them and never gets the
token.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from mocks.manifest import TOKEN_HEADER
from mocks.paths import needs_token


def _matches(given: str, token: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header may carry any.
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def require_token(token: str) -> Middleware:
    """A middleware that answers 401 (JSON) to a protected request without `token`."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if needs_token(request.path):
            given = request.headers.get(TOKEN_HEADER)
            if given is None:
                return web.json_response(
                    {"error": f"the run's token is required (header {TOKEN_HEADER})"},
                    status=401)
            if not _matches(given, token):
                return web.json_response({"error": f"wrong token in {TOKEN_HEADER}"},
                                         status=401)
        return await handler(request)

    return check

