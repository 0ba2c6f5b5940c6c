"""The malformed-scenario corpus: every file in tests/harness/malformed/ is refused with one line
naming the file, the line and the mistake, by the loader and by `notifychaos validate`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario import load_scenario
from harness.scenario_input import MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "malformed"

# file stem → (line, how the message begins). Most files are one change to the same small valid
# scenario (name: corpus, duration: 60s, one proxy.latency step at 10s for 20s on Twilio).
EXPECTED: dict[str, tuple[int, str]] = {
    "alias-bomb": (6, "too large: more than 100000 values once aliases are expanded"),
    "binary-png": (1, "not UTF-8 text: byte 0x89 at column 1 (a scenario file is YAML, in "
                      "UTF-8)"),
    "control-character": (24, "not text: character U+0007 at column 13"),
    "correlate-bad-regex": (14, "reminders.correlate.body: not a regular expression: "
                                "unterminated character set"),
    "correlate-without-ref": (14, "reminders.correlate.body: the expression needs a named group "
                                  "(?P<ref>...)"),
    "deep-block-nesting": (22, "nested too deep: at most 20 levels of mappings and lists"),
    "deep-nesting": (2, "nested too deep: at most 20 levels of mappings and lists"),
    "delay-words": (20, "timeline[0].params: proxy.slow_close delay: expected a duration such as "
                        "800ms or 2s, got '2 seconds'"),
    "demonstration-foreign-gate": (24, "demonstrates.fails[0]: 'duplicates == 0' is not one of "
                                       "the scenario's gates (continuity >= 0.99, p95_latency "
                                       "<= 15s)"),
    "dlr-delay-bare": (20, "timeline[0].params: vendor.dlr delay: a time needs its unit; write "
                           "2000ms for milliseconds (or 2s, 1m)"),
    "duplicate-env": (8, "target.env.LEDGER_URL: given twice (first at line 6)"),
    "faketime-in-a-container": (16, "reminders.month.faketime: libfaketime is preloaded into a "
                                    "process target, not into a container image (target.image "
                                    "is set)"),
    "duplicate-key": (3, "duration: given twice (first at line 2)"),
    "duplicate-step-key": (20, "timeline[0].fault: given twice (first at line 18)"),
    "duplicate-vendor": (11, "vendors.twilio: a second vendor of this name (the first is at "
                             "line 10)"),
    "duration-infinite": (2, "duration: a duration must be finite, got inf"),
    "duration-negative": (2, "duration: expected a duration such as 30s, 2m or 500ms, got '-5s'"),
    "duration-words": (2, "duration: expected a duration such as 30s, 2m or 500ms, got 'soon'"),
    "empty": (1, "expected a mapping of scenario keys (name, target, ...)"),
    "ends-after-run": (17, "timeline[0].for: ends at 65s, after the run's 60s"),
    "for-without-value": (17, "timeline[0].for: no duration given; write one such as 30s, or "
                              "leave `for` out for a fault that lasts to the run's end"),
    "for-zero": (17, "timeline[0].for: lasts 0s"),
    "fraction-above-one": (20, "timeline[0].params: vendor.drop fraction: Input should be less "
                               "than or equal to 1 (got 1.5)"),
    "gate-misspelt-metric": (22, "gates[0]: unknown metric 'continuty'; did you mean "
                                 "continuity?"),
    "gate-threshold-word": (22, "gates[0]: the threshold 'lots' is neither a number nor a "
                                "duration"),
    "gate-without-value": (22, "gates[0]: no value after continuity >=: give the threshold, a "
                               "number or a duration such as 0.99 or 15s"),
    "gate-wrong-operator": (22, "gates[0]: unknown comparison '=>' (one of >= <= == != > <)"),
    "health-ftp": (8, "target.health: expected an http:// URL or tcp://host:port, got 'ftp://"),
    "int-tag": (24, "not valid YAML: cannot read 'abc' as !!int"),
    "latency-bare-number": (20, "timeline[0].params: proxy.latency latency: a time needs its "
                                "unit; write 800ms for milliseconds"),
    "latency-fraction-of-ms": (20, "timeline[0].params: proxy.latency latency: Toxiproxy takes "
                                   "whole milliseconds"),
    "latin-1": (7, "not UTF-8 text: byte 0xe9 at column 19"),
    "missing-health": (3, "target.health: required key is missing"),
    "missing-name": (1, "name: required key is missing"),
    "misspelt-nested-key": (13, "reminders.windw: unknown key; did you mean window?"),
    "misspelt-step-key": (17, "timeline[0].fro: unknown key; did you mean for?"),
    "misspelt-top-key": (2, "duraton: unknown key; did you mean duration?"),
    "nul-byte": (24, "not text: a NUL byte at column 9"),
    "process-fault-on-vendor": (19, "timeline[0].link: process.kill acts on an instance of the "
                                    "target; got 'vendors.twilio', known: target, target[0]"),
    "rate-words": (12, "reminders.rate: expected a rate such as 20/s or 300/m, got 'fast'"),
    "seed-words": (24, "seed: Input should be a valid integer, unable to parse string as an "
                       "integer (got 'many')"),
    "sla-key-number": (24, "slas: key 1: Input should be a valid string"),
    "sla-unknown-vendor": (24, "slas.sinch: no vendor or channel named 'sinch'; known: twilio"),
    "slicer-zero-size": (20, "timeline[0].params: proxy.slicer needs average_size > 0"),
    "starts-after-run": (16, "timeline[0].at: starts at 120s, after the run's 60s"),
    "status-words": (20, "timeline[0].params: vendor.outage status: Input should be a valid "
                         "integer"),
    "tab-indent": (12, "not valid YAML: found character that cannot start any token"),
    "timeline-mapping": (15, "timeline: Input should be a valid list"),
    "top-level-list": (1, "expected a mapping of scenario keys (name, target, ...)"),
    "toxicity-above-one": (20, "timeline[0].params: toxicity must be a number from 0 to 1, got 2"),
    "two-documents": (24, "not valid YAML: expected a single document in the stream, but found "
                          "another document"),
    "unclosed-flow": (5, "not valid YAML: did not find expected ',' or ']' (while parsing a flow "
                         "sequence, from line 4)"),
    "unknown-fault": (18, "timeline[0].fault: unknown fault 'proxy.melt'; known: proxy.down, "),
    "unknown-key": (24, "colour: unknown key"),
    "unknown-link": (19, "timeline[0].link: unknown link 'vendors.sinch'; known: ledger, "
                         "vendors.twilio"),
    "unknown-param": (20, "timeline[0].params: proxy.latency does not take bytes (expected "
                          "latency, jitter, stream, toxicity)"),
    "unknown-placeholder": (6, "target.env.LEDGER_URL: unknown placeholder {ledger.uri}; known: "),
    "utf-16": (1, "not UTF-8 text: UTF-16 (save the file as UTF-8)"),
    "vendor-fault-on-ledger": (19, "timeline[0].link: vendor.drop needs a vendor link "
                                   "(vendors.<name>), got 'ledger'"),
    "vendor-kind-misspelt": (10, "vendors.twilio.kind: unknown vendor kind 'twillio'"),
    "vendor-name-capitals": (9, "vendors: vendor name 'Twilio': use lower-case letters"),
}
FILES = [CORPUS / f"{stem}.yaml" for stem in EXPECTED]


def test_the_corpus_is_the_table() -> None:
    assert len(EXPECTED) >= 40
    assert sorted(CORPUS.iterdir()) == sorted(FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_each_malformed_file_is_one_line_with_its_place(path: Path) -> None:
    line, message = EXPECTED[path.stem]
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    error = caught.value
    assert (error.path, error.line) == (path, line), str(error)
    assert str(error).startswith(f"{path}:{line}: {message}"), str(error)
    assert "\n" not in str(error)
    for quoted in re.findall(r"'[^']+'", error.message):  # no value told twice
        assert error.message.count(quoted) == 1, error.message


def _too_large(folder: Path) -> Path:
    big = folder / "huge.yaml"
    row = "  - {at: 1s, for: 1s, fault: proxy.down, link: vendors.twilio}\n"
    big.write_text("name: huge\ntimeline:\n" + row * (4 * MAX_BYTES // len(row)), "utf-8")
    return big


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    big = _too_large(tmp_path)
    with pytest.raises(ScenarioError, match=r"too large: a scenario file is at most 1000 KB$"):
        load_scenario(big)


def test_validate_checks_every_file_in_one_call(tmp_path: Path) -> None:
    good = ROOT / "scenarios" / "primary-vendor-outage.yaml"
    big = _too_large(tmp_path)
    done = subprocess.run([sys.executable, "-m", "harness", "validate", *FILES, big, good],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == len(FILES) + 1, done.stderr
    for path, shown in zip(FILES, lines, strict=False):
        line, message = EXPECTED[path.stem]
        assert shown.startswith(f"notifychaos: error: {path}:{line}: {message}"), shown
    assert lines[-1] == f"notifychaos: error: {big}: too large: a scenario file is at most 1000 KB"
    assert done.stdout == f"{good}: ok (primary-vendor-outage, 1 fault steps, 5 gates)\n"
