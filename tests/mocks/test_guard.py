"""The guard in-process: its last line answers a mock's own bug in the mock's style and logs it,
the handler's signals pass through it, and its JSON reader's limits."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mocks.guard import MAX_DEPTH, Junk, guard, json_value


class _Style:
    def junk(self, status: int, reason: str) -> web.Response:
        return web.json_response({"Code": f"E{status}", "Reason": reason}, status=status)


class _Signal(Exception):
    pass


def _app() -> web.Application:
    async def buggy(_: web.Request) -> web.Response:
        raise RuntimeError("a bug of the mock")

    async def signalling(_: web.Request) -> web.Response:
        raise _Signal

    async def junk(_: web.Request) -> web.Response:
        raise Junk("no such thing", 404)

    app = web.Application(middlewares=[guard(_Style(), passing=(_Signal,))])
    app.router.add_get("/buggy", buggy)
    app.router.add_get("/signalling", signalling)
    app.router.add_get("/junk", junk)
    return app


def test_the_last_line_answers_a_bug_in_style_and_logs_it(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> list[tuple[int, str]]:
        async with TestClient(TestServer(_app())) as client:
            answers = []
            for path in ("/buggy", "/junk", "/signalling"):
                response = await client.get(path)
                answers.append((response.status, await response.text()))
            return answers

    with caplog.at_level(logging.ERROR):
        buggy, junk, signalling = asyncio.run(scenario())

    assert buggy[0] == 500 and json.loads(buggy[1]) == {"Code": "E500", "Reason": "internal error"}
    assert "Traceback" not in buggy[1]
    assert any("unexpected failure answering GET /buggy" in r.message for r in caplog.records)
    assert junk[0] == 404 and json.loads(junk[1])["Reason"] == "no such thing"
    assert signalling[0] == 500 and "Code" not in signalling[1]  # not the guard's to answer


def test_json_value_limits() -> None:
    def nested(depth: int) -> bytes:
        return b"[" * depth + b"]" * depth

    assert json_value(nested(MAX_DEPTH)) is not None
    for body, reason in ((nested(MAX_DEPTH + 1), "deeper"), (nested(100_000), "deeper"),
                         (b'{"a": NaN}', "not JSON"), (b'[Infinity]', "not JSON"),
                         (b'"\\ud800"', "surrogate"), (b'"\xff"', "not JSON"), (b"", "not JSON")):
        with pytest.raises(Junk) as refused:
            json_value(body)
        assert reason in refused.value.reason and refused.value.status == 400, body[:20]
    assert json_value('{"名": "\\u00e9"}'.encode()) == {"名": "é"}
