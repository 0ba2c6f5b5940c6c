"""Locust users that tick the ledger (each request schedules the next reminder) and, with the
scenario's `app`, borrowers who open the bank's app (loaded only by Locust's process).

Parameters come from the environment the harness sets: NOTIFYCHAOS_RATE (ticks per second in
all), NOTIFYCHAOS_USERS and NOTIFYCHAOS_TOKEN (the run's token, which the ledger's admin API
wants), and NOTIFYCHAOS_APP (harness.loadgen.AppLoad) for the app. The ledger draws everything
else from the run's seed, so what is scheduled depends only on how many ticks arrive, not on
which user sent them.

A shaped run (harness.clock.pacing_env) also gets NOTIFYCHAOS_CURVE (a load_shapes.Curve) and,
with a month, NOTIFYCHAOS_CLOCK_EPOCH: the users then take the curve's ticks in turn, each sent
at its own time from the epoch (or from the start of the load), late but never ahead, and a
LoadTestShape ends the load where the curve ends. So the count of ticks is the curve's, and
each falls due on the calendar the target is told.

Borrowers who open the app are those of the reminders ticked so far (each tick's answer names
its reminder, and so its borrower): a seeded generator picks one per open, uniformly among
them, and whether the open also switches reminders off. Which borrower it is still depends on
how many ticks were answered by then, as the ticks' timing does.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, LoadTestShape, constant, constant_throughput, task
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS

RATE = float(os.environ.get("NOTIFYCHAOS_RATE", "1"))
USERS = int(os.environ.get("NOTIFYCHAOS_USERS", "1"))
# The header's name is mocks.manifest.TOKEN_HEADER, spelt out as tests/harness/test_loadgen.py
# checks it.
HEADERS = {"X-Notifychaos-Token": os.environ.get("NOTIFYCHAOS_TOKEN", "")}
# harness.loadgen.APP_ENV, spelt out: what reads it is imported only when it is set.
APP = os.environ.get("NOTIFYCHAOS_APP")
# harness.clock.CURVE_ENV and EPOCH_ENV, spelt out as APP is.
CURVE = os.environ.get("NOTIFYCHAOS_CURVE")
EPOCH = os.environ.get("NOTIFYCHAOS_CLOCK_EPOCH")

BORROWERS: list[str] = []
"""The borrowers of the reminders ticked so far, each once, in the order first ticked."""
_KNOWN: set[str] = set()


class Ticks(FastHttpUser):
    """One stream of ticks at RATE / USERS per second, or, in a shaped run, the curve's ticks
    as this user's turn comes."""

    wait_time = constant_throughput(RATE / USERS) if CURVE is None else constant(0)
    # No request may wait longer than a fault lasts; a dead ledger must show up as failures.
    network_timeout = 5.0
    connection_timeout = 5.0

    @task
    def schedule_a_reminder(self) -> None:
        if CURVE is not None and not _next_turn():
            return
        try:
            response = self.client.post("/admin/ticks", name="/admin/ticks", headers=HEADERS)
        finally:
            if CURVE is not None:
                _DONE.append(1)
        if APP is not None and response.status_code == 201:
            _ticked(response.json()["reminder_id"])


if APP is not None:
    # Only for the app: these take a second or two to import, which would delay every load.
    from locust import events
    from locust.env import Environment
    from locust.runners import MasterRunner, WorkerRunner

    from harness.journal import JournalWriter
    from harness.loadgen import (
        APP_TIMEOUT,
        AppLoad,
        app_journal_source,
        app_opened,
        app_picks_seed,
    )
    from mocks.bank import borrower_of

    _APP = AppLoad.model_validate_json(APP)
    _PICKS = random.Random()
    """Seeded as the test starts: a worker learns its index only when its master answers."""
    _STARTS = itertools.count()
    _PERIOD = _APP.users / _APP.opens
    """Seconds between one user's opens (constant throughput: late, never ahead)."""
    _JOURNAL: list[JournalWriter] = []
    """This process's own journal file (one per worker: two never append to one file)."""

    @events.test_start.add_listener
    def _own_stream(environment: Environment, **_kwargs: object) -> None:
        # Before any user spawns (on a worker, the master's acknowledgement with the index
        # came first); a master opens nothing, and a second start keeps the stream it has.
        runner = environment.runner
        if _JOURNAL or isinstance(runner, MasterRunner):
            return
        index = runner.worker_index if isinstance(runner, WorkerRunner) else None
        _PICKS.seed(app_picks_seed(_APP.seed, index))
        _JOURNAL.append(JournalWriter(Path(_APP.journal_dir), app_journal_source(index)))

    def _ticked(reminder_id: str) -> None:
        borrower_id = borrower_of(reminder_id)
        if borrower_id not in _KNOWN:
            _KNOWN.add(borrower_id)
            BORROWERS.append(borrower_id)

    class AppOpens(FastHttpUser):
        """Borrowers opening the app, through the `app` link: APP.users users at APP.opens
        per second in all."""

        fixed_count = _APP.users
        network_timeout = APP_TIMEOUT
        connection_timeout = APP_TIMEOUT

        def on_start(self) -> None:
            # The users' first opens 1 / APP.opens apart: all at once, once a period, would
            # leave gaps a fault could fall in. Waited out in wait_time, where a stop ends it.
            self._next_open = time.monotonic() + next(_STARTS) / _APP.opens

        def wait_time(self) -> float:
            return max(0.0, self._next_open - time.monotonic())

        @task
        def open_the_app(self) -> None:
            now = time.monotonic()
            if now < self._next_open:
                return  # before this user's first turn
            if not BORROWERS:
                self._next_open = now + 0.1  # no reminder ticked yet: nobody has one to look up
                return
            self._next_open = now + _PERIOD
            borrower_id = _PICKS.choice(BORROWERS)
            opts_out = _PICKS.random() < _APP.opt_outs
            t, started = time.time(), time.perf_counter()
            # Absolute URLs: Locust gives every user class the -H host (the ledger's admin).
            with self.client.get(f"{_APP.url}/v1/app/borrowers/{borrower_id}/installment",
                                 name="/v1/app/borrowers/[id]/installment",
                                 catch_response=True) as response:
                try:
                    body = response.content or b""
                except FAILURE_EXCEPTIONS:
                    body = b""  # cut short: the borrower saw no view
                opened = app_opened(borrower_id, t, time.perf_counter() - started,
                                    response.status_code, body)
                if opened.status is None and response.status_code == 200:
                    response.failure("the answer is not the borrower's view")
            _JOURNAL[0].write(opened)
            if opts_out:
                self.client.put(f"{_APP.url}/v1/app/borrowers/{borrower_id}/preferences",
                                json={"reminders": False},
                                name="/v1/app/borrowers/[id]/preferences")


if CURVE is not None:
    from harness.load_shapes import Curve

    _CURVE = Curve.from_json(CURVE)
    _TURNS = itertools.count()
    _ORIGIN: list[float] = [float(EPOCH)] if EPOCH is not None else []
    """When the curve's time 0 is (Unix time): the month's epoch, else the load's start."""
    _DONE: list[int] = []
    """One item per tick sent (answered or not)."""
    _GRACE = 10.0
    """Seconds after the curve's end that the last ticks may still take (a request's timeout,
    and a starved process's delay), before the load ends without them."""

    def _next_turn() -> bool:
        """Wait until the next tick of the curve is due; False (after a pause) when the curve
        has no more: the shape ends the load within a second."""
        at = _CURVE.tick_at(next(_TURNS))
        if at is None:
            gevent.sleep(1.0)
            return False
        gevent.sleep(max(0.0, _ORIGIN[0] + at - time.time()))
        return True

    class Paced(LoadTestShape):
        """Every user from the start (a user stopped while it waits would lose its tick), until
        the curve's end and its last tick sent."""

        def tick(self) -> tuple[int, float] | None:
            if not _ORIGIN:  # the first call, before any user spawns
                _ORIGIN.append(time.time())
            late = time.time() - _ORIGIN[0] - _CURVE.duration
            if late >= 0 and (len(_DONE) >= _CURVE.ticks or late >= _GRACE):
                return None
            users = USERS + (_APP.users if APP is not None else 0)
            return users, float(users)


# gevent's loop clock was last read when Locust made its hub, before this file was imported;
# --run-time, counted on it, would otherwise end the load that much early (a second or more).
gevent.get_hub().loop.update_now()
