"""The scenario loader: valid files become typed models; mistakes name file, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.faults import FAULTS
from harness.scenario import Scenario, content_pattern, load_scenario, parse_scenario
from mocks.control import MAX_SECONDS

MINIMAL = """\
name: tiny
duration: 1m
target:
  command: [python, -m, examples.reminder_service]
  env:
    LEDGER_URL: "{ledger.url}"
  health: "http://{target.host}:{target.port}/healthz"
vendors:
  twilio: {kind: twilio}
reminders:
  rate: 120/m
  window: 20s
  correlate: {body: 'ref:(?P<ref>[A-Z0-9]{8})'}
timeline:
  - at: 10s
    for: 500ms
    fault: proxy.latency
    link: vendors.twilio
    params: {latency: 300ms, jitter: 50ms}
gates:
  - continuity >= 0.99
  - p95_latency <= 15s
"""


def error_for(text: str, overrides: list[str] | None = None) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml", overrides or ())
    return caught.value


def test_the_demo_scenarios_load(demo_scenario: Path) -> None:
    scenarios = [load_scenario(path) for path in sorted(demo_scenario.parent.glob("*.yaml"))]
    assert len(scenarios) >= 3
    demo = load_scenario(demo_scenario)
    assert demo.timeline[0].fault == "proxy.down"
    assert demo.links == ["ledger", "vendors.twilio", "vendors.aliyun"]


def test_durations_rates_and_gates_are_typed() -> None:
    scenario = parse_scenario(MINIMAL)
    assert scenario.duration == 60.0
    assert scenario.reminders.rate == 2.0
    assert scenario.timeline[0].duration == 0.5
    assert scenario.drain_seconds == 25.0  # the default lead (5 s) and the window (20 s)
    assert [(g.metric, g.op, g.threshold) for g in scenario.gates] == [
        ("continuity", ">=", 0.99), ("p95_latency", "<=", 15.0)]


def test_a_scenario_round_trips_through_json() -> None:
    scenario = parse_scenario(MINIMAL)
    again = type(scenario).model_validate_json(scenario.model_dump_json(by_alias=True))
    assert again == scenario


@pytest.mark.parametrize(("change", "line", "words"), [
    (("duration: 1m", "duration: soon"), 2, "duration: expected a duration"),
    (("  twilio: {kind: twilio}", "  twilio: {kind: twillio}"), 9, "vendors.twilio.kind"),
    (("  window: 20s", "  window: 20s\n  windw: 3s"), 13, "reminders.windw: unknown key"),
    (("    fault: proxy.latency", "    fault: proxy.melt"), 17, "unknown fault 'proxy.melt'"),
    (("    link: vendors.twilio", "    link: vendors.sinch"), 18, "unknown link 'vendors.sinch'"),
    (("jitter: 50ms}", "jitter: 50ms, bytes: 3}"), 19, "does not take bytes"),
    (("  - continuity >= 0.99", "  - continuity >= lots"), 21, "neither a number nor a duration"),
    (("  - continuity >= 0.99", "  - happiness >= 1"), 21, "unknown metric 'happiness'"),
    (('"{ledger.url}"', '"{ledger.uri}"'), 6, "unknown placeholder {ledger.uri}"),
    (("(?P<ref>[A-Z0-9]{8})", "(?P<id>[A-Z0-9]{8})"), 13, "named group (?P<ref>"),
    (("  - at: 10s", "  - at: 2m"), 15, "after the run's 60s"),
    (("name: tiny\n", ""), 1, "name: required key is missing"),
])
def test_mistakes_name_the_line_and_what_was_expected(
        change: tuple[str, str], line: int, words: str) -> None:
    old, new = change
    assert old in MINIMAL
    error = error_for(MINIMAL.replace(old, new))
    assert error.line == line, str(error)
    assert words in str(error)
    assert str(error).startswith(f"s.yaml:{line}: ")
    assert "\n" not in str(error)


def test_broken_yaml_gives_the_line_of_the_problem() -> None:
    error = error_for("name: x\ntarget: [unclosed\nvendors: {}\n")
    assert error.line == 3
    assert "not valid YAML" in str(error)


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    assert "expected a mapping" in str(error_for("- just\n- a list\n"))


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read the file"):
        load_scenario(tmp_path / "absent.yaml")


def test_overrides_set_keys_before_the_file_is_checked() -> None:
    scenario = parse_scenario(MINIMAL, overrides=[
        "duration=30s", "target.env.DEFECT=cached-phones", "changes.repaid=0.3",
        "timeline=[]"])
    assert scenario.duration == 30.0
    assert scenario.target.env == {"LEDGER_URL": "{ledger.url}", "DEFECT": "cached-phones"}
    assert scenario.changes.repaid == 0.3 and scenario.timeline == []
    assert "DEFECT" not in parse_scenario(MINIMAL).target.env
    with pytest.raises(ScenarioError, match=r"expected key\.path=value"):
        parse_scenario(MINIMAL, overrides=["duration"])
    with pytest.raises(ScenarioError, match=r"duration\.x=1.: duration is not a mapping"):
        parse_scenario(MINIMAL, overrides=["duration.x=1"])


def test_content_checks_name_truth_fields_and_render_them_escaped() -> None:
    scenario = parse_scenario(MINIMAL.replace(
        "  correlate:", "  content: {amount: '(¥|CNY ?){amount_grouped}'}\n  correlate:"))
    template = scenario.reminders.content["amount"]
    assert content_pattern(template, {"amount_grouped": "5,234.00"}) == r"(¥|CNY ?)5,234\.00"
    assert parse_scenario(MINIMAL).reminders.content == {"amount": "{amount}",
                                                         "due_date": "{due_date}"}
    error = error_for(MINIMAL.replace("  correlate:", "  content: {amount: 'yuan'}\n  correlate:"))
    assert "content.amount: names no field" in error.message


def test_network_and_vendor_faults_expect_an_alert_by_default() -> None:
    step = parse_scenario(MINIMAL).timeline[0]
    assert step.alert_expected is True
    quiet = parse_scenario(MINIMAL.replace("    params: {latency: 300ms, jitter: 50ms}",
                                           "    params: {latency: 300ms}\n    expect_alert: false"))
    assert quiet.timeline[0].alert_expected is False


def test_a_demonstration_must_name_gates_of_the_scenario() -> None:
    ok = parse_scenario(MINIMAL + "demonstrates: {fails: [continuity >= 0.99], passed_by: x}\n")
    assert ok.demonstrates is not None
    assert [g.expr for g in ok.demonstrates.fails] == ["continuity >= 0.99"]
    error = error_for(MINIMAL + "demonstrates: {fails: [duplicates == 0], passed_by: x}\n")
    assert error.line == 23
    assert "demonstrates.fails[0]: 'duplicates == 0' is not one of the scenario's gates" \
        in error.message


def _step(fault: str, params: str) -> str:
    return MINIMAL.replace("proxy.latency", fault).replace("{latency: 300ms, jitter: 50ms}",
                                                            params)


def test_fault_times_are_durations_kept_in_the_units_toxiproxy_takes() -> None:
    assert parse_scenario(MINIMAL).timeline[0].params == {"latency": 300, "jitter": 50}
    slow = parse_scenario(_step("proxy.slow_close", "{delay: 2s}")).timeline[0]
    assert slow.params == {"delay": 2000}
    sliced = parse_scenario(_step("proxy.slicer", "{average_size: 100, size_variation: 10, "
                                                  "delay: 2ms}")).timeline[0]
    assert sliced.params["delay"] == 2000  # the slicer's delay is in microseconds
    vendor = parse_scenario(_step("vendor.latency", "{latency: 1.5s}")).timeline[0]
    switches = FAULTS[vendor.fault].switches
    assert switches is not None
    assert switches(vendor.params) == {"latency": 1.5}  # the mock's seconds
    stale = parse_scenario(_step("data.stale", "{lag: 5s}").replace("vendors.twilio\n    params",
                                                                    "ledger\n    params"))
    assert stale.timeline[0].params == {"lag": 5000}


@pytest.mark.parametrize(("params", "words"), [
    ("{latency: 300}", "proxy.latency latency: a time needs its unit; write 300ms"),
    ("{latency: 2 seconds}", "proxy.latency latency: expected a duration such as 800ms or 2s, "
                             "got '2 seconds'"),
    ("{latency: 1.5ms}", "Toxiproxy takes whole milliseconds"),
    ("{latency: 2h}", "proxy.latency latency: at most 1h"),
    ("{latency: true}", "expected a duration such as 800ms or 2s, got True"),
])
def test_a_fault_time_without_a_unit_or_out_of_range_says_how_to_write_it(
        params: str, words: str) -> None:
    error = error_for(MINIMAL.replace("{latency: 300ms, jitter: 50ms}", params))
    assert error.line == 19
    assert words in error.message, error.message


def test_a_mock_fault_time_is_bounded_as_the_mock_bounds_it() -> None:
    error = error_for(_step("vendor.latency", "{latency: 10m}"))
    assert error.message == f"timeline[0].params: vendor.latency latency: at most {MAX_SECONDS:g}s"


def test_a_scenario_read_back_keeps_its_fault_times() -> None:
    scenario = parse_scenario(MINIMAL)
    written = scenario.model_dump(mode="json", by_alias=True)
    assert written["timeline"][0]["params"] == {"latency": "300ms", "jitter": "50ms"}
    assert Scenario.model_validate(written) == scenario
    # A journal written before fault times were durations holds milliseconds as numbers.
    before = written | {"timeline": [written["timeline"][0] | {"params": {"latency": 300,
                                                                          "jitter": 50}}]}
    assert Scenario.model_validate(before) == scenario


def test_a_step_without_for_lasts_to_the_end_of_the_run() -> None:
    assert parse_scenario(MINIMAL.replace("    for: 500ms\n", "")).timeline[0].duration is None
    assert "timeline[0].for: no duration given" in error_for(
        MINIMAL.replace("for: 500ms", "for:")).message
    zero = error_for(MINIMAL.replace("for: 500ms", "for: 0s"))
    assert "timeline[0].for: lasts 0s" in zero.message


def test_a_step_must_end_by_the_end_of_the_run() -> None:
    assert parse_scenario(MINIMAL.replace("for: 500ms", "for: 50s")).timeline[0].duration == 50
    error = error_for(MINIMAL.replace("for: 500ms", "for: 50.5s"))
    assert (error.line, error.message) == (16, "timeline[0].for: ends at 60.5s, after the run's "
                                               "60s (leave `for` out for a fault that lasts to "
                                               "the run's end)")
    shortened = error_for(MINIMAL, overrides=["duration=10s"])
    assert shortened.message.startswith("timeline[0].at: starts at 10s, after the run's 10s")


def test_dates_stay_strings_in_files_and_overrides() -> None:
    assert parse_scenario(MINIMAL + "about: 2026-99-99\n").about == "2026-99-99"
    assert parse_scenario(MINIMAL, overrides=["about=2026-12-05"]).about == "2026-12-05"


def test_a_misspelt_key_is_unknown_at_its_own_line() -> None:
    error = error_for(MINIMAL.replace("  correlate:", "  corelate:"))
    assert (error.line, error.message) == (13, "reminders.corelate: unknown key; did you mean "
                                               "correlate?")
    error = error_for(MINIMAL + "colour: red\n")
    assert (error.line, error.message) == (23, "colour: unknown key")


def test_a_key_given_twice_is_an_error_at_the_second() -> None:
    error = error_for(MINIMAL.replace("  rate: 120/m\n", "  rate: 120/m\n  rate: 2/s\n"))
    assert (error.line, error.message) == (12, "reminders.rate: given twice (first at line 11); "
                                               "a key is given once")
    # YAML's merge key is how a mapping takes another's keys, not a duplicate.
    merged = parse_scenario(MINIMAL.replace("  rate: 120/m\n", "  <<: {lead: 3s}\n  rate: 120/m\n"))
    assert merged.reminders.lead == 3.0


KILL_AT_10S = MINIMAL.replace("""    for: 500ms
    fault: proxy.latency
    link: vendors.twilio
    params: {latency: 300ms, jitter: 50ms}
""", """    for: 500ms
    fault: process.kill
    link: LINK
""")


def test_instances_are_linked_by_index_and_by_name() -> None:
    lone = parse_scenario(MINIMAL)
    assert (lone.target.instance_names, lone.instance_links) == (["0"], {"target": 0,
                                                                         "target[0]": 0})
    replicas = parse_scenario(MINIMAL, overrides=["target.replicas=3"])
    assert replicas.target.instance_names == ["0", "1", "2"]
    assert replicas.instance_links == {"target[0]": 0, "target[1]": 1, "target[2]": 2}
    pair = parse_scenario(MINIMAL, overrides=["target.instances=[active, standby]"])
    assert pair.instance_links == {"target[0]": 0, "target[1]": 1, "target.active": 0,
                                   "target.standby": 1}


def test_a_process_fault_names_an_instance_of_the_target() -> None:
    pair = ["target.instances=[active, standby]"]
    assert parse_scenario(KILL_AT_10S.replace("LINK", "target.standby"),
                          overrides=pair).timeline[0].link == "target.standby"
    assert parse_scenario(KILL_AT_10S.replace("LINK", "target[1]"),
                          overrides=pair).timeline[0].link == "target[1]"
    error = error_for(KILL_AT_10S.replace("LINK", "target"), overrides=pair)
    assert (error.line, error.message) == (
        18, "timeline[0].link: process.kill acts on an instance of the target; got 'target', "
        "known: target[0], target[1], target.active, target.standby")
    beyond = error_for(KILL_AT_10S.replace("LINK", "target[2]"), overrides=["target.replicas=2"])
    assert beyond.message.endswith("got 'target[2]', known: target[0], target[1]")
    assert parse_scenario(KILL_AT_10S.replace("LINK", "target")).timeline[0].link == "target"
    stop = KILL_AT_10S.replace("process.kill", "process.stop").replace("LINK", "target.active")
    assert parse_scenario(stop, overrides=pair).timeline[0].fault == "process.stop"


def test_each_instance_has_its_own_placeholders_and_an_image_may_run_several() -> None:
    own = MINIMAL.replace('    LEDGER_URL: "{ledger.url}"\n', '    LEDGER_URL: "{ledger.url}"\n'
                          '    NAME: "{target.instance}-{target.index}"\n')
    assert parse_scenario(own, overrides=["target.replicas=2"]).target.env["NAME"] \
        == "{target.instance}-{target.index}"
    error = error_for(own.replace("{target.index}", "{target.name}"))
    assert (error.line, error.message.split(";")[0]) == (
        7, "target.env.NAME: unknown placeholder {target.name}")
    image = parse_scenario(MINIMAL.replace("  command: [python, -m, examples.reminder_service]\n",
                                           "  image: reminders:2\n"),
                           overrides=["target.replicas=2"])
    assert image.target.instance_names == ["0", "1"]


def test_instances_are_counted_or_named_once_and_named_plainly() -> None:
    both = error_for(MINIMAL, overrides=["target.replicas=3", "target.instances=[a, b]"])
    assert both.message == ("target: replicas is 3 but 2 instances are named; give one or "
                            "the other")
    assert parse_scenario(MINIMAL, overrides=["target.replicas=2", "target.instances=[a, b]"]
                          ).target.instance_names == ["a", "b"]
    assert "instance name 'Active'" in error_for(
        MINIMAL, overrides=["target.instances=[Active]"]).message
    assert "instance names must differ" in error_for(
        MINIMAL, overrides=["target.instances=[a, a]"]).message
    assert "target.replicas:" in error_for(MINIMAL, overrides=["target.replicas=9"]).message


def test_named_instances_are_counted_so_a_written_scenario_reads_back() -> None:
    pair = parse_scenario(MINIMAL, overrides=["target.instances=[active, standby]"])
    assert pair.target.replicas == 2
    assert Scenario.model_validate(pair.model_dump(by_alias=True)) == pair


def test_a_network_fault_on_the_app_link_expects_no_alert_from_the_notifier() -> None:
    app = parse_scenario(MINIMAL + "app: {opens: 1/s}\n", overrides=[
        "timeline=[{at: 1s, for: 2s, fault: proxy.down, link: app}]"])
    assert app.timeline[0].alert_expected is False
    told = parse_scenario(MINIMAL + "app: {opens: 1/s}\n", overrides=[
        "timeline=[{at: 1s, for: 2s, fault: proxy.down, link: app, expect_alert: true}]"])
    assert told.timeline[0].alert_expected is True


def test_a_channel_may_have_an_sla_like_a_vendor() -> None:
    model = parse_scenario(MINIMAL + "channels: {email: {window: 1m}}\n"
                           "slas: {email: {availability: 0.99}}\n")
    assert model.slas["email"].availability == 0.99 and model.allowed == ("sms", "email")
    assert model.window_of("email") == 60 and model.drain_seconds == model.reminders.lead + 60


def test_a_pattern_that_is_no_regular_expression_is_refused_where_it_is_written() -> None:
    notice = error_for(MINIMAL + "compliance: {optout_notice: '('}\n")
    assert notice.message.startswith("compliance.optout_notice: not a regular expression")
    rule = error_for(MINIMAL.replace("fault: proxy.latency", "fault: vendor.content_filter")
                     .replace("params: {latency: 300ms, jitter: 50ms}", "params: {pattern: '('}"))
    assert rule.message.startswith(
        "timeline[0].params: vendor.content_filter pattern: not a regular expression"), rule
