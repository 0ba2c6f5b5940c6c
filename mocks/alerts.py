"""The alert sink: records every alert the notifier raises, to time its detection of faults."""

from __future__ import annotations

from aiohttp import web

from harness.journal import AlertReceived, JournalWriter
from mocks.guard import ControlStyle, Junk, guard, json_value


def create_app(journal: JournalWriter) -> web.Application:
    """`POST /alerts` with any JSON (or text) body; answers 202."""

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        text = raw.decode("utf-8", "replace")
        try:
            body = json_value(raw)
        except Junk:  # kept as the text it is: the notifier's alert, however malformed
            body = text
        if not isinstance(body, dict | list | str):
            body = text
        journal.write(AlertReceived(body=body))
        return web.json_response({"status": "accepted"}, status=202)

    app = web.Application(middlewares=[guard(ControlStyle())])
    app.router.add_post("/alerts", receive)
    return app
