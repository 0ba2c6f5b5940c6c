"""Locust users that tick the ledger: each request schedules the next reminder (loaded only by
Locust's process).

Parameters come from the environment the harness sets: NOTIFYCHAOS_RATE (ticks per second in
all), NOTIFYCHAOS_USERS and NOTIFYCHAOS_TOKEN (the run's token, which the ledger's admin API
wants). The ledger draws everything else from the run's seed, so what is scheduled depends
only on how many ticks arrive, not on which user sent them.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant_throughput, task

RATE = float(os.environ.get("NOTIFYCHAOS_RATE", "1"))
USERS = int(os.environ.get("NOTIFYCHAOS_USERS", "1"))
# The header's name is mocks.manifest.TOKEN_HEADER, spelt out: this file loads nothing of ours.
HEADERS = {"X-Notifychaos-Token": os.environ.get("NOTIFYCHAOS_TOKEN", "")}


class Ticks(FastHttpUser):
    """One stream of ticks at RATE / USERS per second."""

    wait_time = constant_throughput(RATE / USERS)
    # No request may wait longer than a fault lasts; a dead ledger must show up as failures.
    network_timeout = 5.0
    connection_timeout = 5.0

    @task
    def schedule_a_reminder(self) -> None:
        self.client.post("/admin/ticks", name="/admin/ticks", headers=HEADERS)
