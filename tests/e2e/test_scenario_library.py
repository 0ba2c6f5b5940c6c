"""The scenario library's mutation score, on real processes: the reference notifier passes every
shipped scenario (a demonstration fails as it says it must), and each defect variant of it fails
the scenario meant to catch it, on the right gate.

All runs are real (Toxiproxy, the mock process, the notifier, Locust, on 127.0.0.1), made through
the pytest plugin's rehearser five at a time, so the whole library takes a few minutes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.journal import (
    BorrowerOptedOut,
    ComponentReady,
    FaultApplied,
    ReminderScheduled,
    SendRecorded,
)
from harness.pytest_plugin import Rehearser
from harness.scenario import load_scenario
from harness.truth import CHANGE_GRACE
from tests.e2e.conftest import ROOT, Finished, finish, rehearse_many, start

pytestmark = pytest.mark.e2e

SCENARIOS = sorted(path.stem for path in (ROOT / "scenarios").glob("*.yaml"))


@dataclass(frozen=True)
class Variant:
    """A notifier with one defect, the scenario meant to catch it and the gate that must fail."""

    defect: str
    scenario: str
    gate: str
    shorter: tuple[str, ...] = ()
    made_by: tuple[str, ...] = ()
    """The overrides that make the variant, when not the notifier's DEFECT (a migration's
    defect, one instance instead of a pair)."""

    @property
    def overrides(self) -> list[str]:
        return [*(self.made_by or (f"target.env.DEFECT={self.defect}",)), *self.shorter]


# The primary-vendor-outage variants keep the 30 s outage but stop the load when it ends.
_OUTAGE_ONLY = ("duration=60s",)
VARIANTS = (
    Variant("no-failover", "primary-vendor-outage", "continuity >= 0.99", _OUTAGE_ONLY),
    Variant("wrong-timezone", "primary-vendor-outage", "continuity >= 0.99", _OUTAGE_ONLY),
    Variant("never-alerts", "primary-vendor-outage", "undetected_faults == 0", _OUTAGE_ONLY),
    Variant("blind-resend", "lost-responses", "duplicates == 0"),
    Variant("cached-phones", "phone-changes-during-outage", "wrong_recipient == 0"),
    Variant("ignores-repayments", "repayment-storm", "sent_after_repayment == 0"),
    Variant("wrong-amount-format", "repayment-storm", "wrong_content == 0"),
    Variant("ignores-opt-outs", "stop-replies", "sent_to_opted_out == 0"),
    Variant("slow-drain", "all-vendors-down", "max_recovery <= 20s"),
    Variant("drops-in-flight", "core-upgrade-rehearsal", "continuity >= 0.99",
            made_by=("upgrade.migrate.env.DEFECT=drops-in-flight",)),
    Variant("lone-instance", "active-standby-failover", "continuity >= 0.99",
            made_by=("target.instances=[active]",)),
    Variant("sms-only", "compliance-template-rejected", "continuity >= 0.99",
            made_by=("target.env.CHANNELS=sms",)),
    Variant("leaks-pii", "pii-review", "pii_exposed == 0"),
    Variant("wall-calendar", "repayment-calendar", "continuity >= 0.99"),
)

BASELINES = {"core-upgrade-rehearsal": ["timeline=[]"]}
"""Scenarios rehearsed against their baseline (`notifychaos compare`): how the baseline is made."""


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Finished]:
    """Every run of the library: `reference/<scenario>` and `defect/<defect>`."""
    jobs: dict[str, tuple[Path, list[str]]] = {}
    for name in SCENARIOS:
        jobs[f"reference/{name}"] = (ROOT / "scenarios" / f"{name}.yaml", [])
    for variant in VARIANTS:
        jobs[f"defect/{variant.defect}"] = (ROOT / "scenarios" / f"{variant.scenario}.yaml",
                                            variant.overrides)
    for name, overrides in BASELINES.items():
        jobs[f"baseline/{name}"] = (ROOT / "scenarios" / f"{name}.yaml", overrides)
    rehearse = Rehearser(tmp_path_factory.mktemp("library"))
    # Seven at a time, the longest first, so that no long run is left to finish alone: a run
    # mostly waits (load at a few reminders a second, then its drain). Seven took 345-350 s
    # against 478 s at five. With the cores saturated a send takes longer, so more are in
    # flight when a proxy.down cuts them: the reference keeps those in doubt and asks again
    # (pii-review, month-end-peak), and the gates of the longer outages allow for them.
    def length(job: tuple[Path, list[str]]) -> float:
        scenario = load_scenario(*job)
        return scenario.duration + scenario.drain_seconds

    longest_first = dict(sorted(jobs.items(), key=lambda item: -length(item[1])))
    return rehearse_many(longest_first, rehearse, concurrency=7)


def _summary(run: Finished) -> str:
    return f"exit {run.code}\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_reference_notifier_passes_every_scenario(library: dict[str, Finished],
                                                      scenario: str) -> None:
    run = library[f"reference/{scenario}"]
    card = run.scorecard()
    expected = "failed_as_expected" if card_demonstrates(scenario) else "passed"
    assert (run.code, card["verdict"]) == (0, expected), _summary(run)
    assert card["inconclusive"] == []
    # A run that made few reminders proves little: 4 a second for at least 40 s.
    assert card["owed"] >= 100, _summary(run)
    for fault in card["faults"]:
        assert fault["touched"] > 0 and fault["exposed"] > 0, fault
        assert sum(fault["outcomes_exposed"].values()) == fault["exposed"], fault


def card_demonstrates(scenario: str) -> bool:
    return "\ndemonstrates:" in (ROOT / "scenarios" / f"{scenario}.yaml").read_text("utf-8")


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.defect)
def test_each_defect_fails_the_scenario_meant_to_catch_it(library: dict[str, Finished],
                                                          variant: Variant) -> None:
    run = library[f"defect/{variant.defect}"]
    card = run.scorecard()
    assert (run.code, card["verdict"]) == (1, "failed"), _summary(run)
    failed = {gate["expr"]: gate for gate in card["gates"] if not gate["passed"]}
    assert variant.gate in failed, _summary(run)
    assert failed[variant.gate]["witnesses"] or variant.gate.startswith(
        ("undetected_faults", "max_recovery")), failed[variant.gate]


def test_the_naive_notifier_misses_exactly_the_reminders_the_outage_held_up(
        library: dict[str, Finished]) -> None:
    card = library["reference/primary-vendor-outage-naive"].scorecard()
    [fault] = card["faults"]
    assert fault["fault"] == "proxy.down" and fault["link"] == "vendors.twilio"
    assert card["outcomes"]["missed"] > 0
    assert fault["outcomes_exposed"]["missed"] == card["outcomes"]["missed"]
    assert [g["expr"] for g in card["gates"] if not g["passed"]] == ["continuity >= 0.99"]


def test_the_reference_fails_over_and_alerts_about_the_vendor_that_is_down(
        library: dict[str, Finished]) -> None:
    card = library["reference/primary-vendor-outage"].scorecard()
    [fault] = card["faults"]
    assert fault["outcomes_exposed"]["on_time"] == fault["exposed"] > 0
    assert fault["detection"] is not None and fault["detection"] < 30
    assert card["vendors"]["aliyun"]["accepted"] > 0


def test_lost_answers_are_settled_by_asking_twilio_and_its_sla_is_reported_apart(
        library: dict[str, Finished]) -> None:
    run = library["reference/lost-responses"]
    card = run.scorecard()
    twilio = card["vendors"]["twilio"]
    assert twilio["lost"] > 0 and twilio["reads"] > 0
    breached = [term for term in card["slas"] if not term["met"]]
    assert breached and {term["vendor"] for term in breached} == {"twilio"}
    assert card["sla_breaches"] == 1 and card["duplicates"] == 0
    blind = library["defect/blind-resend"].scorecard()
    [fault] = blind["faults"]
    assert blind["duplicates"] > 0 and fault["duplicates_exposed"] == blind["duplicates"]


def test_a_killed_frozen_and_restarted_notifier_loses_and_repeats_nothing(
        library: dict[str, Finished]) -> None:
    run = library["reference/notifier-crash"]
    card = run.scorecard()
    journal = run.journal()
    assert [f.fault for f in journal.of(FaultApplied)] == [
        "vendor.latency", "process.kill", "process.pause", "process.restart", "process.stop"]
    assert card["outcomes"]["missed"] == 0 and card["duplicates"] == 0
    # What fell due during the maintenance window went out once it was back.
    maintenance = card["faults"][4]
    assert maintenance["exposed"] > 0 and "SIGTERM" in maintenance["effect"], maintenance
    assert card["delivered_after_maintenance"] == 1.0
    # Sends were in flight when it was killed and frozen: it asked Twilio about them.
    assert card["vendors"]["twilio"]["reads"] > 0
    restart = card["faults"][3]
    assert restart["reverted_at"] - restart["applied_at"] < 10  # instant: done when back up
    assert len([c for c in journal.of(ComponentReady) if c.component == "target"]) == 1


def test_a_drifting_replica_is_caught_by_the_primary_check_and_alerted(
        library: dict[str, Finished]) -> None:
    card = library["reference/core-upgrade-drift"].scorecard()
    drift, schema = card["faults"]
    assert drift["fault"] == "data.drift" and drift["touched"] > 0
    assert drift["outcomes_exposed"]["on_time"] == drift["exposed"] > 0
    assert drift["detection"] is not None and schema["detection"] is not None
    cached = library["defect/cached-phones"].scorecard()
    assert cached["outcomes"]["wrong_recipient"] > 0


def test_a_repaid_installment_is_never_reminded_and_partial_amounts_are_right(
        library: dict[str, Finished]) -> None:
    card = library["reference/repayment-storm"].scorecard()
    assert card["cancelled"] > 20 and card["sent_after_repayment"] == 0
    ignoring = library["defect/ignores-repayments"].scorecard()
    assert ignoring["sent_after_repayment"] >= card["cancelled"] // 2
    wrong = library["defect/wrong-amount-format"].scorecard()
    assert wrong["outcomes"]["wrong_content"] == wrong["owed"]
    assert wrong["unmatched"] == 0  # matched by its reference, judged on its content


def test_a_borrower_who_replied_stop_gets_nothing_more(library: dict[str, Finished]) -> None:
    run = library["reference/stop-replies"]
    card = run.scorecard()
    assert card["opted_out"] > 0 and card["sent_to_opted_out"] == 0
    journal = run.journal()
    stopped = {o.phone: o.t for o in journal.of(BorrowerOptedOut)}
    assert stopped
    # A send already handed to the vendor when the reply came is the race the grace allows.
    assert [s for s in journal.of(SendRecorded)
            if s.to in stopped and s.t > stopped[s.to] + CHANGE_GRACE] == []
    assert run.run_dir is not None
    with sqlite3.connect(run.run_dir / "outbox.sqlite3") as outbox:
        opted = {phone for (phone,) in outbox.execute("SELECT phone FROM opted_out")}
    assert opted == set(stopped)  # every reply reached the notifier


def test_the_backlog_after_a_total_outage_drains_within_its_gate(
        library: dict[str, Finished]) -> None:
    card = library["reference/all-vendors-down"].scorecard()
    assert card["max_recovery"] is not None and card["max_recovery"] <= 20
    slow = library["defect/slow-drain"].scorecard()
    assert slow["max_recovery"] is None or slow["max_recovery"] > 20


def test_each_run_keeps_the_logs_of_every_component(library: dict[str, Finished]) -> None:
    run_dir = library["reference/primary-vendor-outage"].run_dir
    assert run_dir is not None
    for log in ("toxiproxy.log", "mocks.log", "target.log"):
        assert (run_dir / "logs" / log).stat().st_size > 0, log
    assert (run_dir / "load" / "locust.log").exists()
    assert (run_dir / "load" / "locust.json").exists()
    assert sorted(p.name for p in (run_dir / "journal").iterdir()) == ["harness.jsonl",
                                                                       "mocks.jsonl"]


def test_a_journal_can_be_scored_again_to_the_same_scorecard(
        library: dict[str, Finished], tmp_path: Path) -> None:
    run = library["defect/no-failover"]
    assert run.run_dir is not None
    shutil.copytree(run.run_dir / "journal", tmp_path / "journal")
    again = finish(start("report", tmp_path), None, timeout=60)
    assert again.code == 1, again.stderr
    assert json.loads((tmp_path / "scorecard.json").read_text()) == run.scorecard()


def _compare(library: dict[str, Finished], baseline: str, rehearsal: str,
             out: Path) -> Finished:
    first, second = library[baseline].run_dir, library[rehearsal].run_dir
    assert first is not None and second is not None
    return finish(start("compare", first, second, "--out", out), None, timeout=120)


def test_a_good_migration_is_no_worse_than_its_baseline(library: dict[str, Finished],
                                                        tmp_path: Path) -> None:
    rehearsal = library["reference/core-upgrade-rehearsal"]
    card = rehearsal.scorecard()
    [upgrade] = card["upgrades"]
    assert upgrade["outcome"] == "upgraded", upgrade
    # The core system's upgrade acted on the feed; the notifier's primary check sent nothing of it.
    snapshot, leak, _ = card["faults"]
    assert "records forgotten" in snapshot["effect"], snapshot
    assert "test records leaked (borrowers)" in leak["effect"], leak
    assert card["cancelled"] > 0 and card["unmatched"] == 0
    starts = [c for c in rehearsal.journal().of(ComponentReady) if c.component == "target"]
    assert len(starts) == 2 and starts[0].address == starts[1].address  # A, then B in its place
    assert rehearsal.run_dir is not None
    with sqlite3.connect(rehearsal.run_dir / "outbox.sqlite3") as outbox:
        assert outbox.execute("PRAGMA user_version").fetchone() == (2,)  # migrated for B
    compared = _compare(library, "baseline/core-upgrade-rehearsal",
                        "reference/core-upgrade-rehearsal", tmp_path)
    assert compared.code == 0, compared.stdout[-4000:] + compared.stderr
    result = json.loads((tmp_path / "compare.json").read_text())
    assert result["verdict"] == "not worse" and result["owed_in_both"] >= 100
    assert [r for r in result["changed"] if r["lost"]] == []
    assert (tmp_path / "compare.html").stat().st_size > 0


def test_a_migration_that_drops_sends_in_flight_is_worse_and_names_what_it_lost(
        library: dict[str, Finished], tmp_path: Path) -> None:
    compared = _compare(library, "baseline/core-upgrade-rehearsal", "defect/drops-in-flight",
                        tmp_path)
    assert compared.code == 1, compared.stdout[-4000:] + compared.stderr
    result = json.loads((tmp_path / "compare.json").read_text())
    lost = [r for r in result["changed"] if r["lost"]]
    missed = library["defect/drops-in-flight"].scorecard()["outcomes"]["missed"]
    missed_anyway = library["baseline/core-upgrade-rehearsal"].scorecard()["outcomes"]["missed"]
    # Every reminder the broken migration dropped is named, and nothing else was lost.
    assert 0 < missed - missed_anyway <= len(lost) <= missed, result["reasons"]
    assert lost[0]["reminder_id"] in compared.stdout + compared.stderr
    assert {r["rehearsal"] for r in lost} <= {"missed", "unsettled"}


def test_the_standby_takes_over_from_a_killed_active(library: dict[str, Finished]) -> None:
    pair = library["reference/active-standby-failover"]
    ready = [c.component for c in pair.journal().of(ComponentReady)
             if c.component.startswith("target")]
    assert ready == ["target.active", "target.standby"]
    assert pair.run_dir is not None
    for name in ("active", "standby"):
        assert (pair.run_dir / "logs" / f"target-{name}.log").stat().st_size > 0
    card = pair.scorecard()
    assert card["outcomes"]["missed"] == 0 and card["duplicates"] == 0
    lone = library["defect/lone-instance"].scorecard()
    assert lone["outcomes"]["missed"] > card["owed"] // 4


def test_a_compliance_pause_is_bridged_by_push_and_e_mail(library: dict[str, Finished]) -> None:
    run = library["reference/compliance-template-rejected"]
    card = run.scorecard()
    twilio, aliyun = card["faults"]
    assert twilio["touched"] > 0 and aliyun["touched"] > 0
    # The reminders the pause held up went out by the app's push, or by e-mail to those
    # without the app or with a stale token; the others by SMS.
    mix = card["channel_mix"]
    assert mix["sms"] > 0 and mix["push"] > 0 and mix["email"] > 0, mix
    exposed = twilio["channels_exposed"]
    assert exposed.get("push", 0) + exposed.get("email", 0) > 0, twilio
    assert card["sms_share"] is not None and card["sms_share"] > card["push_share"]
    assert card["pii_exposed"] == 0 and card["missing_optout_notice"] == 0
    # Borrowers kept opening the app while SMS was paused, and it showed the truth.
    app = card["app"]
    assert app is not None and app["opens_in_faults"] > 0, app
    assert app["availability_in_faults"] >= 0.99 and app["correctness"] >= 0.99, app
    sent = run.journal().of(SendRecorded)
    mails = [s for s in sent if s.channel == "email"]
    assert mails and all("回T退订" in s.body for s in mails)
    only_sms = library["defect/sms-only"].scorecard()
    assert only_sms["channel_mix"]["push"] == only_sms["channel_mix"]["email"] == 0
    assert only_sms["faults"][0]["outcomes_exposed"]["missed"] > 0


def test_a_notifier_that_leaks_personal_data_is_named_with_the_field(
        library: dict[str, Finished]) -> None:
    card = library["reference/pii-review"].scorecard()
    assert card["pii_exposed"] == 0 and card["missing_optout_notice"] == 0
    assert card["channel_mix"]["sms"] > 0
    assert card["channel_mix"]["push"] + card["channel_mix"]["email"] > 0, card["channel_mix"]
    leaky = library["defect/leaks-pii"].scorecard()
    assert leaky["pii_exposed"] > 0 and leaky["missing_optout_notice"] > 0
    failed = {gate["expr"] for gate in leaky["gates"] if not gate["passed"]}
    assert {"pii_exposed == 0", "missing_optout_notice == 0"} <= failed
    fields = {field for trace in leaky["worst"] for attempt in trace["attempts"]
              for field in attempt["exposed"]}
    assert {"national_id", "account"} <= fields, fields


def test_a_link_sends_the_reminders_to_the_spam_folder(library: dict[str, Finished]) -> None:
    card = library["reference/carrier-link-filter"].scorecard()
    assert card["verdict"] == "failed_as_expected"
    assert card["outcomes"]["filtered"] > 0
    assert all(fault["touched"] > 0 for fault in card["faults"])


def test_the_notifier_s_own_calendar_sends_each_stage_on_its_day(
        library: dict[str, Finished]) -> None:
    run = library["reference/repayment-calendar"]
    card = run.scorecard()
    truths = run.journal().of(ReminderScheduled)
    by_stage: dict[str, list[ReminderScheduled]] = {}
    for truth in truths:
        by_stage.setdefault(truth.reminder_id.rsplit("-", 1)[1], []).append(truth)
    # Each installment has its three reminders, T-3, T-1 and on the day, 2 and 1 days apart.
    assert sorted(by_stage) == ["T0", "T1", "T3"]
    assert len(by_stage["T3"]) == len(by_stage["T1"]) == len(by_stage["T0"]) == card["owed"] // 3
    day = 86_400 / card["calendar"]["speed"]
    for first, last in zip(by_stage["T3"], by_stage["T0"], strict=True):
        assert last.remind_at - first.remind_at == pytest.approx(3 * day, abs=0.002)
    # The notifier worked every time out itself, and sent each on time; the report counts them
    # by calendar day across March.
    assert card["outcomes"]["on_time"] == card["owed"] >= 300, _summary(run)
    labels = [bucket["label"] for bucket in card["owed_over_time"] if bucket["owed"]]
    assert labels[0].startswith("Mar") and len(labels) >= 28
    # On the wall clock, every stage of March 2030 is years away: none is sent at all.
    wall = library["defect/wall-calendar"].scorecard()
    assert wall["outcomes"]["missed"] == wall["owed"] == card["owed"]
