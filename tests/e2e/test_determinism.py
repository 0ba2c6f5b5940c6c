"""Same seed, same fates, on real processes: two runs of a scenario with random vendor faults
(Twilio drops 30 % of sends and loses 30 % of its answers) and random handset faults (20 % of
messages meet a phone that is off, 10 % of borrowers reply STOP) give every reminder the same
fate, whatever order and moment the reference notifier's four workers send them in. The two
runs are made side by side (two `notifychaos run` processes at once, so each runs on a machine
the other loads) and compared by what `notifychaos run --check-determinism` uses,
`harness.determinism.compare_runs` (what the flag prints is test_cli_determinism.py's); the
test then checks the two journals itself: the same population and schedule of owed
reminders, then send by send.

Timing cannot decide a fate here: each reminder is sent once, through Twilio (a drop fails no
call and a lost answer is found by asking Twilio, so the notifier never fails over or retries),
its window is 20 s (only a notifier 20 s behind could make it late), and its borrower is one of
100,000 (so a STOP reply almost never meets a second reminder of the same borrower). What timing
does decide, whether a send made within a second of the faults' start or end caught them, is
left out of the comparison, as the determinism check leaves it out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from harness import compare
from harness.continuity import judge_run
from harness.determinism import compare_runs
from harness.journal import (
    BorrowerOptedOut,
    FaultApplied,
    FaultReverted,
    FaultTouched,
    Journal,
    MockFaultsChanged,
    ReminderScheduled,
    SendRecorded,
    read_journal,
)
from tests.e2e.conftest import finish, start

pytestmark = pytest.mark.e2e

MARGIN = 1.0

SCENARIO = """\
name: same-seed-same-fates
about: Random vendor and handset faults, drawn from the seed; a rerun gives the same fates.
seed: 11
duration: 25s

target:
  command: [python, -m, examples.reminder_service]
  env:
    PORT: "{target.port}"
    PUBLIC_URL: "{target.url}"
    OUTBOX_PATH: "{run.dir}/outbox.sqlite3"
    LEDGER_URL: "{ledger.url}"
    ALERT_URL: "{alerts.url}"
    NOTIFIER_MODE: resilient
    PRIMARY_VENDOR: twilio
    SECONDARY_VENDOR: aliyun
    TWILIO_BASE_URL: "{vendors.twilio.url}"
    TWILIO_ACCOUNT_SID: "{vendors.twilio.credentials.account_sid}"
    TWILIO_AUTH_TOKEN: "{vendors.twilio.credentials.auth_token}"
    TWILIO_FROM: "{vendors.twilio.credentials.from}"
    ALIYUN_BASE_URL: "{vendors.aliyun.url}"
    ALIYUN_ACCESS_KEY_ID: "{vendors.aliyun.credentials.access_key_id}"
    ALIYUN_ACCESS_KEY_SECRET: "{vendors.aliyun.credentials.access_key_secret}"
    ALIYUN_SIGN_NAME: 示例银行
    ALIYUN_TEMPLATE_CODE: SMS_REPAYMENT_REMINDER
  health: "http://{target.host}:{target.port}/healthz"
  ready_timeout: 30s

vendors:
  twilio:
    kind: twilio
    inbound_url: "{target.url}/inbound/twilio"
  aliyun:
    kind: aliyun
    sign_name: 示例银行
    templates:
      SMS_REPAYMENT_REMINDER: "@TEXT@"
    report_url: "{target.url}/dlr/aliyun"
    inbound_url: "{target.url}/inbound/aliyun"

handsets:
  absent: 0.2
  stop: 0.1

population:
  borrowers: 100000
  locale: zh_CN

reminders:
  rate: 4/s
  window: 20s
  correlate:
    body: 'ref:(?P<ref>[A-Z0-9]{8})'
    client_ref: true

load:
  users: 4
  spawn_rate: 4/s

timeline:
  - at: 2s
    for: 22s
    fault: vendor.drop
    link: vendors.twilio
    params: {fraction: 0.3}
    expect_alert: false
  - at: 2s
    for: 22s
    fault: vendor.response_lost
    link: vendors.twilio
    params: {fraction: 0.3}
    expect_alert: false

gates:
  - duplicates == 0

""".replace("@TEXT@", "尊敬的${name}，您的房贷本期还款${amount}元"
           "将于${due_date}到期，请按时还款。ref:${ref}")

Fates = dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]]
_REF = re.compile(r"ref:([A-Z0-9]{8})")


def _fates(journal: Journal) -> tuple[Fates, set[str]]:
    """Each reference's sends (vendor, handset, fault switches that touched it), and the
    references with a send within MARGIN of a fault's start or end."""
    edges = [e.t for e in journal.events
             if isinstance(e, FaultApplied | FaultReverted | MockFaultsChanged)]
    touched: dict[str, set[str]] = defaultdict(set)
    for touch in journal.of(FaultTouched):
        touched[touch.subject].add(touch.switch)
    fates: dict[str, list[tuple[str, str, tuple[str, ...]]]] = defaultdict(list)
    near: set[str] = set()
    for send in journal.of(SendRecorded):
        match = _REF.search(send.body)
        assert match is not None, send.body
        ref = match.group(1)
        fates[ref].append((send.vendor, send.handset, tuple(sorted(touched[send.message_id]))))
        if any(abs(send.t - edge) < MARGIN for edge in edges):
            near.add(ref)
    return {ref: tuple(sends) for ref, sends in fates.items()}, near


def _schedule(journal: Journal) -> list[tuple[object, ...]]:
    """Each reminder the ledger scheduled, in order: who (borrower, name, number, consent),
    what (loan, amount, due date, reference) and its lead and window, not the moment it came."""
    return [(r.reminder_id, r.ref, r.loan_id, r.borrower_id, r.name, r.phone, r.opted_out,
             r.amount, r.due_date, round(r.remind_at - r.t, 3), round(r.send_by - r.remind_at, 3))
            for r in journal.of(ReminderScheduled)]


def test_two_runs_with_the_same_seed_give_every_reminder_the_same_fate(tmp_path: Path) -> None:
    scenario = tmp_path / "same-seed-same-fates.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    outs = [tmp_path / "one", tmp_path / "two"]
    processes = [start("run", scenario, "--out", out) for out in outs]
    for process, out in zip(processes, outs, strict=True):
        done = finish(process, out, timeout=600)
        assert done.code == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "seed 11, notifychaos " in done.stdout and " locust " in done.stdout
    runs = [next(out.iterdir()) for out in outs]
    verdict = compare_runs(*runs)
    assert verdict.same and verdict.compared >= 60, verdict.describe()

    first, second = (read_journal(run / "journal") for run in runs)
    # Identical population and identical owed schedule: the reminders both runs scheduled are
    # the same ones in the same order, owed alike, and `compare` lines them up.
    schedules = _schedule(first), _schedule(second)
    both = min(map(len, schedules))
    assert both >= 60 and schedules[0][:both] == schedules[1][:both]
    owed = [[judged.owed for judged in judge_run(journal).reminders[:both]]
            for journal in (first, second)]
    assert owed[0] == owed[1] and sum(owed[0]) >= 60
    assert compare(runs[0], runs[1]).compared == both
    one, near_one = _fates(first)
    two, near_two = _fates(second)
    compared = (one.keys() & two.keys()) - near_one - near_two
    assert len(compared) >= 60
    assert {ref: one[ref] for ref in compared} == {ref: two[ref] for ref in compared}
    # The faults really acted, on both runs: each kind of draw decided some fates.
    for fates, journal in ((one, first), (two, second)):
        seen = [handset for ref in compared for _, handset, _ in fates[ref]]
        switches = [s for ref in compared for _, _, touched in fates[ref] for s in touched]
        assert seen.count("dropped") >= 5 and seen.count("absent") >= 5
        assert switches.count("response_lost") >= 5
        assert journal.of(BorrowerOptedOut)
    # Every reminder was sent once, through Twilio: no failover or retry that timing decides.
    assert all(len(one[ref]) == 1 and one[ref][0][0] == "twilio" for ref in compared)
