"""The benchmark's floor: the smallest aiohttp app on uvloop, answering every POST with the
WireMock stub's fixed 201 body. What it cannot beat on this machine, no aiohttp server can.

`python -m bench.reference` serves on a free loopback port and prints it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import uvloop
from aiohttp import web

STUB = Path(__file__).resolve().parent / "wiremock" / "mappings" / "twilio-send.json"


async def serve() -> None:
    """Serve until killed."""
    body = json.loads(STUB.read_text(encoding="utf-8"))["response"]["body"].encode()

    async def send(_: web.Request) -> web.Response:
        return web.Response(body=body, status=201, content_type="application/json",
                            charset="utf-8")

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", send)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"port: {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve())
