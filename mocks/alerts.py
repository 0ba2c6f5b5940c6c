"""The alert sink: records every alert the notifier raises, to time its detection of faults."""

from __future__ import annotations

import json

from aiohttp import web

from harness.journal import AlertReceived, JournalWriter


def create_app(journal: JournalWriter) -> web.Application:
    """`POST /alerts` with any JSON (or text) body; answers 202."""

    async def receive(request: web.Request) -> web.Response:
        text = (await request.read()).decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            body = text
        if not isinstance(body, dict | list | str):
            body = text
        journal.write(AlertReceived(body=body))
        return web.json_response({"status": "accepted"}, status=202)

    app = web.Application()
    app.router.add_post("/alerts", receive)
    return app
