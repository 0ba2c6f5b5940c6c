"""Locust users that make installments fall due on the ledger (loaded only by Locust's process).

Parameters come from the environment the harness sets: NOTIFYCHAOS_RATE (installments per second
in all), NOTIFYCHAOS_USERS, NOTIFYCHAOS_SEED, NOTIFYCHAOS_BORROWERS, NOTIFYCHAOS_LOCALE.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random

from faker import Faker
from locust import FastHttpUser, constant_throughput, task

RATE = float(os.environ.get("NOTIFYCHAOS_RATE", "1"))
USERS = int(os.environ.get("NOTIFYCHAOS_USERS", "1"))
SEED = int(os.environ.get("NOTIFYCHAOS_SEED", "0"))
BORROWERS = int(os.environ.get("NOTIFYCHAOS_BORROWERS", "1000"))
LOCALE = os.environ.get("NOTIFYCHAOS_LOCALE", "zh_CN")

_user_numbers = itertools.count()


def _population() -> list[tuple[str, str]]:
    """The borrowers of the run, the same for a given seed: (name, E.164 mobile number)."""
    fake = Faker(LOCALE)
    fake.seed_instance(SEED)
    people = []
    for _ in range(BORROWERS):
        digits = "".join(ch for ch in fake.phone_number() if ch.isdigit())
        people.append((fake.name(), "+86" + digits[-11:]))
    return people


POPULATION = _population()


class Installments(FastHttpUser):
    """One loan officer's stream of installments falling due, at RATE / USERS per second."""

    wait_time = constant_throughput(RATE / USERS)
    # No request may wait longer than a fault lasts; a dead ledger must show up as failures.
    network_timeout = 5.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self.rng = random.Random(SEED * 1_000_003 + next(_user_numbers))

    @task
    def installment_falls_due(self) -> None:
        name, phone = self.rng.choice(POPULATION)
        due = dt.date.today() + dt.timedelta(days=self.rng.randint(3, 10))
        self.client.post("/admin/installments", name="/admin/installments", json={
            "loan_ref": f"ML-{self.rng.randrange(10**7, 10**8)}",
            "name": name,
            "phone": phone,
            "amount": f"{self.rng.randint(200_000, 2_000_000) / 100:.2f}",
            "due_date": due.isoformat(),
        })
