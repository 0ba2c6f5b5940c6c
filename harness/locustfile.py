"""Locust users that tick the ledger (each tick schedules the next reminder, a request asks for
every tick due since the last) and, with the scenario's `app`, borrowers who open the bank's
app (loaded only by Locust's process).

Parameters come from the environment the harness sets: NOTIFYCHAOS_RATE (ticks per second in
all), NOTIFYCHAOS_USERS and NOTIFYCHAOS_TOKEN (the run's token, which the ledger's admin API
wants), and NOTIFYCHAOS_APP (harness.loadgen.AppLoad) for the app. The ledger draws everything
else from the run's seed, so what is scheduled depends only on how many ticks arrive, not on
which user sent them or how they were batched.

Each user of a steady run has a stream of RATE / USERS ticks a second of its own, the first
as it starts (harness.ticking.Stream.steady), so that however Locust's master splits the users
between its workers, the rate in all is RATE. A shaped run (harness.clock.pacing_env) also gets
NOTIFYCHAOS_CURVE (a load_shapes.Curve) and, with a month, NOTIFYCHAOS_CLOCK_EPOCH: the users
of one process then share the curve's ticks, timed from the epoch (or from the start of the
load), and a LoadTestShape ends the load where the curve ends (on the master, once the
workers' statistics count every tick). With NOTIFYCHAOS_CURVE_PARTS workers, worker k ticks the
curve's k-th part (ticks k, k + parts, ...: harness.ticking.Stream). Either way a user sends a
request when its next tick is due and at most every harness.ticking.REQUEST_INTERVAL, asking
for every tick due by then (`{"count": N}`): late by up to that interval, never ahead, and
none is skipped when the ledger answers slowly. So the count of ticks is the rate's, or the
curve's, and each falls due on the calendar the target is told.

Locust's statistics have the requests as `POST /admin/ticks` and the ticks they carried as
`TICK /admin/ticks` (one entry per tick, a failure for each tick of a failed request).

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
from locust import FastHttpUser, LoadTestShape, task
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS
from locust.runners import Runner, WorkerRunner

from harness.ticking import REQUEST_INTERVAL, TICK_METHOD, Stream

RATE = float(os.environ.get("NOTIFYCHAOS_RATE", "1"))
USERS = int(os.environ.get("NOTIFYCHAOS_USERS", "1"))
# The header's name is mocks.manifest.TOKEN_HEADER, spelt out as tests/harness/test_loadgen.py
# checks it.
HEADERS = {"X-Notifychaos-Token": os.environ.get("NOTIFYCHAOS_TOKEN", "")}
# harness.loadgen.APP_ENV, spelt out: what reads it is imported only when it is set.
APP = os.environ.get("NOTIFYCHAOS_APP")
# harness.clock.CURVE_ENV, EPOCH_ENV and PARTS_ENV, spelt out as APP is.
CURVE = os.environ.get("NOTIFYCHAOS_CURVE")
EPOCH = os.environ.get("NOTIFYCHAOS_CLOCK_EPOCH")
PARTS = int(os.environ.get("NOTIFYCHAOS_CURVE_PARTS", "1"))

TICKS = "/admin/ticks"
"""The ledger's tick endpoint, and the name of both its statistics entries."""

BORROWERS: list[str] = []
"""The borrowers of the reminders ticked so far, each once, in the order first ticked."""
_KNOWN: set[str] = set()


class Ticks(FastHttpUser):
    """A stream of ticks at RATE / USERS per second, or, in a shaped run, the curve's ticks
    shared with the process's other users: a request for every tick due since the last."""

    # No request may wait longer than a fault lasts; a dead ledger must show up as failures.
    network_timeout = 5.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self._stream = (Stream.steady(RATE / USERS, time.time()) if CURVE is None
                        else _shared(self.environment.runner))
        self._earliest = 0.0
        """When this user may send its next request (Unix time)."""

    def wait_time(self) -> float:
        # Until the next tick is due and this user's interval is over: a stop ends the wait.
        at = self._stream.next_at()
        if at is None:
            return 1.0  # the curve has no more: the shape ends the load within a second
        return max(0.0, at - time.time(), self._earliest - time.time())

    @task
    def schedule_reminders(self) -> None:
        now = time.time()
        count = self._stream.take(now)
        if not count:
            return  # another user took them, or the wait was cut short
        self._earliest = now + REQUEST_INTERVAL
        started = time.perf_counter()
        response = self.client.post(TICKS, name=TICKS, headers=HEADERS, json={"count": count})
        elapsed_ms = (time.perf_counter() - started) * 1000
        failure: Exception | None = getattr(response, "error", None)
        if failure is None and response.status_code != 201:
            failure = RuntimeError(f"{TICKS} answered {response.status_code}")
        fire = self.environment.events.request.fire
        for _ in range(count):
            fire(request_type=TICK_METHOD, name=TICKS, response_time=elapsed_ms, response_length=0,
                 exception=failure, context={})
        if APP is not None and failure is None:
            for tick in response.json()["ticks"]:
                _ticked(tick["reminder_id"])


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
    _ORIGIN: list[float] = [float(EPOCH)] if EPOCH is not None else []
    """When the curve's time 0 is (Unix time): the month's epoch, else the load's start."""
    _STREAM: list[Stream] = []
    _GRACE = 10.0
    """Seconds after the curve's end that the last ticks may still take (a request's timeout,
    and a starved process's delay), before the load ends without them."""

    def _shared(runner: Runner | None) -> Stream:
        """The curve's ticks (this worker's part of them), which every user of this process
        takes from."""
        if not _STREAM:
            if not _ORIGIN:  # a worker without a month: from its first user's start
                _ORIGIN.append(time.time())
            # A worker knows its index once its master answered, before any user spawns.
            part = runner.worker_index if isinstance(runner, WorkerRunner) else 0
            _STREAM.append(Stream(_CURVE, _ORIGIN[0], part, PARTS))
        return _STREAM[0]

    class Paced(LoadTestShape):
        """Every user from the start, until the curve's end and its last tick sent (counted
        by the statistics: a master's are its workers', a few seconds behind)."""

        def tick(self) -> tuple[int, float] | None:
            if not _ORIGIN:  # the first call, before any user spawns
                _ORIGIN.append(time.time())
            late = time.time() - _ORIGIN[0] - _CURVE.duration
            sent = 0 if self.runner is None else \
                self.runner.stats.get(TICKS, TICK_METHOD).num_requests
            if late >= 0 and (sent >= _CURVE.ticks or late >= _GRACE):
                return None
            users = USERS + (_APP.users if APP is not None else 0)
            return users, float(users)

# gevent's loop clock was last read when Locust made its hub, before this file was imported;
# --run-time, counted on it, would otherwise end the load that much early (a second or more).
gevent.get_hub().loop.update_now()
