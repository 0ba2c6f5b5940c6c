"""The scenario model: one YAML file loaded into a validated, typed `Scenario`."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from harness.durations import DURATION_SCHEMA, Duration, Rate
from harness.errors import ScenarioError
from harness.faults import FAULTS, read_params, written_params
from harness.gates import Gate, parse_gate
from harness.load_shapes import DAY, Curve, batches, curve, daily, month_end, spike
from harness.scenario_input import read_bytes, read_document, read_value
from mocks.bank import CLOCK_TIME, Changes, Population, check_stage_days
from mocks.catalogue import credential_keys
from mocks.channels import channel_placeholders
from mocks.control import Regex
from mocks.handsets import HandsetConfig
from mocks.manifest import CHANNELS, Channel, ChannelKind, VendorConfig


def _gate(value: Any) -> Any:
    return parse_gate(value) if isinstance(value, str) else value


GateExpr = Annotated[
    Gate,
    BeforeValidator(_gate),
    PlainSerializer(lambda gate: gate.expr, return_type=str),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


FROM_FILE = {"from_file": True}
"""The validation context of a scenario as written in a file (see `read_params`); without it,
the data is a scenario already read (a journal's, a model's dump)."""


def _from_file(info: ValidationInfo) -> bool:
    return bool(isinstance(info.context, dict) and info.context.get("from_file"))


class Target(_Model):
    """How to start the notifier under test and know it is ready (see docs/target-contract.md):
    a command run as a process, or a container image (the command then overrides the image's)."""

    command: list[str] | None = Field(default=None, min_length=1)
    image: str | None = Field(default=None, min_length=1, description="a Docker image (name:tag) "
                              "already on the engine; the container runs on the host's network")
    user: str | None = Field(default=None, description="image only: the container's user "
                             "(uid:gid or a name); by default the image's own")
    cwd: str = "."
    env: dict[str, str] = {}
    health: str
    ready_timeout: Duration = 30.0
    replicas: int = Field(default=1, ge=1, le=8, description="how many instances run, each "
                          "with its own port and log; process faults name one (target[0])")
    instances: list[str] | None = Field(default=None, min_length=1, max_length=8,
                                        description="the instances' names instead of a count "
                                        "(e.g. [active, standby]); faults name target.<name>")
    stop_grace: Duration = Field(default=10.0, ge=0, description="how long a stopped instance "
                                 "has after SIGTERM before it is killed")

    @property
    def instance_names(self) -> list[str]:
        """Each instance's name, in start order: the given names, else `0`, `1`, ..."""
        return list(self.instances) if self.instances else [str(i) for i in range(self.replicas)]

    @model_validator(mode="before")
    @classmethod
    def _count_named(cls, data: Any) -> Any:
        # Named instances are counted, so that a target written out (a journal's scenario,
        # which gives every field) reads back as it was.
        if isinstance(data, dict) and isinstance(data.get("instances"), list) \
                and "replicas" not in data:
            return {**data, "replicas": len(data["instances"])}
        return data

    @field_validator("instances")
    @classmethod
    def _instance_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
                raise ValueError(f"instance name {name!r}: use lower-case letters, digits, _ or -")
        if value is not None and len(set(value)) != len(value):
            raise ValueError("instance names must differ")
        return value

    @field_validator("health")
    @classmethod
    def _health_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "tcp://")):
            raise ValueError(f"expected an http:// URL or tcp://host:port, got {value[:60]!r}")
        return value

    @model_validator(mode="after")
    def _command_or_image(self) -> Target:
        if self.image is None:
            if self.command is None:
                raise ValueError("give a command to run, or an image to run as a container")
            if self.user is not None:
                raise ValueError("user is for an image's container; a command runs as the harness")
        elif self.cwd != ".":
            raise ValueError("cwd is for a command; an image has its own working directory")
        if (self.instances is not None and "replicas" in self.model_fields_set
                and self.replicas != len(self.instances)):
            raise ValueError(f"replicas is {self.replicas} but {len(self.instances)} instances "
                             "are named; give one or the other")
        return self


class Migration(_Model):
    """The command run between stopping version A and starting version B (placeholders
    allowed); its output goes to the run's logs, and a non-zero exit fails the rehearsal."""

    command: list[str] = Field(min_length=1)
    cwd: str = "."
    env: dict[str, str] = {}
    timeout: Duration = Field(default=60.0, gt=0)


class Upgrade(_Model):
    """What an `upgrade` step cuts over to: version B of the target (a `target`-shaped block,
    on the same ports) and the migration run while neither version runs."""

    target: Target
    migrate: Migration | None = None


CONTENT_FIELDS = ("amount", "amount_grouped", "due_date", "due_year", "due_month", "due_day",
                  "name", "ref")
"""The truth a content check may name: `{amount}` 5234.00, `{amount_grouped}` 5,234.00,
`{due_date}` 2026-12-05, `{due_year}` 2026, `{due_month}` 12, `{due_day}` 05, `{name}`,
`{ref}`."""

_CONTENT_FIELD = re.compile(r"\{(" + "|".join(CONTENT_FIELDS) + r")\}")


def content_pattern(template: str, truth: dict[str, str]) -> str:
    """A content check's regular expression with each `{field}` replaced by the truth's value
    (escaped); other braces (`\\d{2}`) stay regular-expression syntax."""
    return _CONTENT_FIELD.sub(lambda match: re.escape(truth[match.group(1)]), template)


class Correlation(_Model):
    """How a delivered message is matched to the reminder it carries (its content is checked
    apart, by `Reminders.content`)."""

    body: str | None = None
    client_ref: bool = False

    @field_validator("body")
    @classmethod
    def _body_regex(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if "ref" not in compiled.groupindex:
            raise ValueError("the expression needs a named group (?P<ref>...)")
        return value

    @model_validator(mode="after")
    def _some_rule(self) -> Correlation:
        if self.body is None and not self.client_ref:
            raise ValueError("give a body expression, client_ref: true, or both")
        return self


def _default_content() -> dict[str, str]:
    return {"amount": "{amount}", "due_date": "{due_date}"}


_CLOCK_TIME = re.compile(CLOCK_TIME)


def _time_of_day(value: Any) -> Any:
    # YAML reads an unquoted 09:00 as the number 540 (base 60): ask for quotes.
    if not (isinstance(value, str) and _CLOCK_TIME.fullmatch(value)):
        raise ValueError(f'expected a quoted time of day such as "09:00", got {value!r}')
    return value


class Stages(_Model):
    """The bank's own reminder calendar: for each installment, one reminder `before_days` days
    before its due date (0: on the day), each at `at` in the bank's time zone (Asia/Shanghai).
    The feed then gives the due date and the stage, not remind_at: the notifier computes it
    on the compressed clock."""

    before_days: list[int] = Field(min_length=1, max_length=8, description="days before the "
                                   "due date, the earliest first: [3, 1, 0]")
    at: str = Field(description='the time of day of each stage, quoted: "09:00"')

    @field_validator("before_days")
    @classmethod
    def _earliest_first(cls, value: list[int]) -> list[int]:
        check_stage_days(value)
        return value

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        return _time_of_day(value)


class Month(_Model):
    """A calendar month of due dates compressed onto the run's load: load time t is calendar
    time `start + t * speed`, where speed maps `days` days onto the duration. The target is
    told the clock (NOTIFYCHAOS_CLOCK_EPOCH, _SPEED, _START and `{clock.*}` placeholders)."""

    start: date = Field(description="the calendar day the load begins on (midnight, UTC)")
    days: int = Field(default=30, ge=1, le=62, description="calendar days the load lasts")
    lead_in: Duration = Field(default=5.0, gt=0, le=120, description="how long before the "
                              "month begins the target is started: the clock's epoch is fixed "
                              "then, and the load waits for it")
    faketime: bool = Field(default=False, description="also run a process target under "
                           "libfaketime's speed-up, for one that cannot read the clock's "
                           "variables: its clock reads the calendar, and its sleeps and "
                           "timeouts run `speed` times faster too")
    stages: Stages | None = Field(default=None, description="the bank's own reminder "
                                  "calendar (T-3, T-1, on the day): each installment gets one "
                                  "reminder per stage, whose time the notifier computes")

    def speed(self, duration: float) -> float:
        """Calendar seconds per real second over a run of `duration` seconds of load."""
        return self.days * DAY / duration


class Steady(_Model):
    """The same rate all along (`reminders.rate`)."""

    kind: Literal["steady"]


class MorningBatch(_Model):
    """A core system's batch: `count` reminders released within `within`, over the background
    of `reminders.rate`; once (`at`, from the start of load) or each calendar day at `daily`
    (a time of day such as "09:00", with a month)."""

    kind: Literal["morning_batch"]
    count: int = Field(ge=1, le=100_000)
    within: Duration = Field(default=5.0, gt=0)
    at: Duration | None = None
    daily: str | None = Field(default=None, description='a time of day, quoted: "09:00"')

    @field_validator("daily", mode="before")
    @classmethod
    def _daily(cls, value: Any) -> Any:
        return value if value is None else _time_of_day(value)

    @model_validator(mode="after")
    def _once_or_daily(self) -> MorningBatch:
        if (self.at is None) == (self.daily is None):
            raise ValueError("give at (once, from the start of load) or daily (a time of day), "
                             "not both")
        return self

    @property
    def daily_seconds(self) -> float | None:
        """`daily` as seconds after midnight."""
        if self.daily is None:
            return None
        hours, minutes = self.daily.split(":")
        return int(hours) * 3600.0 + int(minutes) * 60.0


class MonthEnd(_Model):
    """The month-end peak: `peak` reminders a second over the month's last `last_days` days,
    `reminders.rate` before (needs `reminders.month`)."""

    kind: Literal["month_end"]
    last_days: float = Field(default=5.0, gt=0)
    peak: Rate = Field(gt=0)


class Spike(_Model):
    """`factor` times `reminders.rate` from `at` for `for`."""

    kind: Literal["spike"]
    at: Duration
    lasting: Duration = Field(gt=0, alias="for")
    factor: float = Field(gt=1, le=100)


Shape = Annotated[Steady | MorningBatch | MonthEnd | Spike, Field(discriminator="kind")]
"""How the rate of reminders goes over the load (`reminders.shape`, by `kind`)."""


class Reminders(_Model):
    """How fast reminders are scheduled, how far ahead, how long each has to reach the inbox,
    and how a delivered message is matched to its reminder and checked."""

    rate: Rate = Field(gt=0, description="reminders a second (a shape's base rate)")
    shape: Shape = Field(default=Steady(kind="steady"), description="how the rate goes over "
                         "the load, by kind: steady, morning_batch, month_end, spike")
    month: Month | None = Field(default=None, description="a calendar month of due dates "
                                "compressed onto the load")
    lead: Duration = Field(default=5.0, ge=0, description="remind_at is this long after the "
                           "reminder appears in the ledger: the notifier schedules the send "
                           "(with month stages: at least this long before the first stage)")
    window: Duration = Field(gt=0)
    correlate: Correlation
    content: dict[str, str] = Field(default_factory=_default_content, description="checks of "
                                    "a delivered body: name → regular expression with {field}s")

    @field_validator("content")
    @classmethod
    def _content_checks(cls, value: dict[str, str]) -> dict[str, str]:
        example = dict.fromkeys(CONTENT_FIELDS, "0")
        for name, template in value.items():
            try:
                re.compile(content_pattern(template, example))
            except re.error as exc:
                raise ValueError(f"content.{name}: not a regular expression: {exc}") from None
            if not _CONTENT_FIELD.search(template):
                raise ValueError(f"content.{name}: names no field; use one of "
                                 + ", ".join(f"{{{f}}}" for f in CONTENT_FIELDS))
        return value


class ChannelSpec(_Model):
    """A channel beside SMS that reminders may reach borrowers by, and its window."""

    window: Duration = Field(gt=0, description="a reminder delivered on this channel is on "
                             "time if it arrives within this of remind_at")


class Compliance(_Model):
    """What every message, on any channel, must and must not say."""

    visible: int = Field(default=4, ge=0, le=18, description="characters of a personal-data "
                         "field (national id, account number, phone) a message may show, as "
                         "the last four in ****1234; more of it is exposed")
    optout_notice: Regex | None = Field(default=None, description="a regular expression "
                                        "every message must match, e.g. '回T退订|reply STOP'")


class App(_Model):
    """Borrowers opening the bank's app during the run (Locust, through the `app` link): the
    app's view of their next installment, which must stay up when SMS is down."""

    opens: Rate = Field(gt=0, description="app opens per second")
    opt_outs: float = Field(default=0.0, ge=0, le=1, description="fraction of opens in which "
                            "the borrower also switches reminders off (an opt-out in the app)")


class Load(_Model):
    """The Locust users that make installments fall due."""

    users: int = Field(default=10, ge=1)
    spawn_rate: Rate = Field(default=10.0, gt=0)
    workers: int = Field(default=0, ge=0, le=32, description="0: Locust runs as one process; "
                         "N: one master and N worker processes, each with its own seed stream")
    web_ui: bool = Field(default=False, description="serve Locust's web UI on 127.0.0.1 to "
                         "watch the run live (the load still starts and stops by itself)")
    remote_workers: int = Field(default=0, ge=0, description="of the workers, how many join "
                                "from other hosts (notifychaos load-worker); the harness "
                                "starts the others")

    @model_validator(mode="after")
    def _remote_among_workers(self) -> Load:
        if self.remote_workers > self.workers:
            raise ValueError(f"remote_workers is {self.remote_workers} but there are only "
                             f"{self.workers} workers; remote ones count among them")
        return self


class Sla(_Model):
    """What a vendor's contract promises, judged on the vendor's own send traffic."""

    availability: float | None = Field(default=None, gt=0, le=1,
                                       description="share of calls answered (not down, "
                                       "throttled or lost)")
    p95_latency: Duration | None = Field(default=None, gt=0)


class Step(_Model):
    """One fault on the timeline: when, for how long (left out: to the end of the run), what,
    and where, with its parameters."""

    at: Duration
    duration: Annotated[Duration | None, WithJsonSchema(DURATION_SCHEMA)] = Field(
        default=None, alias="for")
    fault: str
    link: str
    # A `true` stays a bool (reorder: true), not the number 1 (a time refuses it).
    params: dict[str, bool | float | int | str] = Field(default={}, description="the fault's "
                                                  "parameters; times are durations with their "
                                                  "unit (latency: 800ms, delay: 2s)")
    expect_alert: bool | None = Field(default=None, description="whether the notifier must "
                                      "alert about it; by default yes for network, vendor, "
                                      "email and push faults (but network faults on the app "
                                      "link), no for data and process faults")

    @field_validator("fault")
    @classmethod
    def _known_fault(cls, value: str) -> str:
        if value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; known: {', '.join(FAULTS)}")
        return value

    @field_validator("params")
    @classmethod
    def _params_fit(cls, value: dict[str, bool | float | int | str],
                    info: ValidationInfo) -> dict[str, bool | float | int | str]:
        fault = info.data.get("fault")
        if fault is None:  # the fault itself was wrong and is reported
            return value
        return read_params(FAULTS[fault], value, written=_from_file(info))

    @field_serializer("params")
    def _params_as_written(self, value: dict[str, bool | float | int | str]
                           ) -> dict[str, bool | float | int | str]:
        return written_params(FAULTS[self.fault], value)

    @property
    def alert_expected(self) -> bool:
        """Whether a notifier must notice this step (see `expect_alert`)."""
        if self.expect_alert is not None:
            return self.expect_alert
        # The app link is between borrowers and the bank's app: the notifier never uses it.
        return self.link != "app" and FAULTS[self.fault].family in ("network", "vendor",
                                                                    "email", "push")


class Demonstration(_Model):
    """Marks a scenario as a demonstration of an expected failure: it fails exactly `fails`
    (gates of the scenario), and `passed_by` says which notifier passes it instead."""

    fails: list[GateExpr] = Field(min_length=1)
    passed_by: str = Field(min_length=1)


class Scenario(_Model):
    """A whole rehearsal: the target, its vendors, the load, the fault timeline and the gates."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    about: str = ""
    seed: int = 0
    duration: Duration = Field(gt=0)
    drain: Duration | None = None
    target: Target
    upgrade: Upgrade | None = Field(default=None, description="version B of the target and its "
                                    "migration, for the timeline's `upgrade` step")
    vendors: dict[str, VendorConfig] = Field(min_length=1)
    handsets: HandsetConfig = HandsetConfig()
    slas: dict[str, Sla] = {}
    population: Population = Population()
    changes: Changes = Changes()
    reminders: Reminders
    channels: dict[ChannelKind, ChannelSpec] = Field(default={}, description="channels beside "
                                                     "SMS (push, email) served in this run, "
                                                     "each with its window")
    compliance: Compliance = Compliance()
    app: App | None = None
    load: Load = Load()
    timeline: list[Step] = []
    gates: list[GateExpr] = []
    fail_on_sla_breach: bool = Field(default=False, description="a vendor's SLA breach fails "
                                     "the run (exit 1); by default it is reported only")
    demonstrates: Demonstration | None = None

    @field_validator("vendors")
    @classmethod
    def _vendor_names(cls, value: dict[str, VendorConfig]) -> dict[str, VendorConfig]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
                raise ValueError(f"vendor name {name!r}: use lower-case letters, digits, _ or -")
        return value

    @property
    def drain_seconds(self) -> float:
        """How long the run keeps watching after load stops: by default until the last
        reminder's window has passed (lead + window; with stages, the last installment's last
        stage may be up to a day more than the stages span after its lead)."""
        if self.drain is not None:
            return self.drain
        window = max(self.window_of(channel) for channel in self.allowed)
        month = self.reminders.month
        if month is None or month.stages is None:
            return self.reminders.lead + window
        days = month.stages.before_days
        staged = (days[0] - days[-1] + 1) * DAY / month.speed(self.duration)
        return self.reminders.lead + staged + window

    @property
    def allowed(self) -> tuple[Channel, ...]:
        """The channels a reminder may reach its borrower by: SMS, and those served."""
        return tuple(channel for channel in CHANNELS
                     if channel == "sms" or channel in self.channels)

    def window_of(self, channel: Channel) -> float:
        """How long after remind_at a reminder delivered by `channel` is on time (SMS:
        `reminders.window`)."""
        spec = self.channels.get(channel) if channel != "sms" else None
        return self.reminders.window if spec is None else spec.window

    @property
    def links(self) -> list[str]:
        """The Toxiproxy links of this run: the ledger, one per vendor, one per channel
        beside SMS, and the app (the ledger's borrower-facing view) when borrowers open it."""
        return ["ledger", *(f"vendors.{name}" for name in self.vendors), *self.channels,
                *(["app"] if self.app is not None else [])]

    @property
    def instance_links(self) -> dict[str, int]:
        """The links process faults may name, each to its instance's index: `target[i]`,
        `target.<name>` for named instances, and `target` when there is only one."""
        names = self.target.instance_names
        links = {"target": 0} if len(names) == 1 else {}
        links |= {f"target[{index}]": index for index in range(len(names))}
        if self.target.instances:
            links |= {f"target.{name}": index for index, name in enumerate(names)}
        return links

    @property
    def paced(self) -> bool:
        """Whether Locust paces each tick by the curve (a shape, or a month whose clock the
        load must keep), rather than at a steady throughput from its own start."""
        return self.reminders.shape.kind != "steady" or self.reminders.month is not None

    def curve(self) -> Curve:
        """The rate of reminders over the load, as `reminders.shape` gives it (its checks
        against the month and the duration are made when the file is read)."""
        shape, rate, duration = self.reminders.shape, self.reminders.rate, self.duration
        month = self.reminders.month
        if isinstance(shape, Spike):
            return spike(rate, duration, shape.at, shape.lasting, shape.factor)
        if isinstance(shape, MorningBatch):
            hour = shape.daily_seconds
            if hour is None or month is None:
                starts = [shape.at or 0.0]
            else:
                starts = daily(hour, month.speed(duration), duration)
            return batches(rate, duration, starts, shape.count, shape.within)
        if isinstance(shape, MonthEnd) and month is not None:
            return month_end(rate, duration, month.days, shape.last_days, shape.peak)
        return curve(rate, duration)

    def placeholders(self) -> set[str]:
        """Every placeholder name a target may use in this scenario (`target.*` are the
        instance's own: its port, its name, its index)."""
        names = {"ledger.url", "alerts.url", "mocks.ca_bundle", "target.host", "target.port",
                 "target.url", "target.instance", "target.index", "run.dir", "run.seed"}
        for name, vendor in self.vendors.items():
            names |= {f"vendors.{name}.url", f"vendors.{name}.host", f"vendors.{name}.port"}
            names |= {f"vendors.{name}.credentials.{key}" for key in credential_keys(vendor.kind)}
        for channel in self.channels:
            names |= channel_placeholders(channel)
        if self.reminders.month is not None:
            names |= {"clock.epoch", "clock.speed", "clock.start"}
        return names


PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-zA-Z0-9_.\-]+)\}")
"""A `{name}` placeholder (group 1), or an escaped `{{` / `}}` (no group)."""


def placeholders_in(text: str) -> list[str]:
    """The placeholder names used in `text` (`{{`/`}}` are literal braces)."""
    return [match.group(1) for match in PLACEHOLDER.finditer(text) if match.group(1)]


Overrides = Sequence[str] | Mapping[str, Any]
"""Scenario keys set before a file is checked: `key.path=value` strings (the value read as YAML),
or a mapping of `key.path` to a value used as it is."""


def load_scenario(path: Path | str, overrides: Overrides = ()) -> Scenario:
    """Read and validate a scenario file, with `overrides` applied; any problem is a
    ScenarioError with file and line."""
    path = Path(path)
    return parse_scenario(read_bytes(path), path, overrides)


def parse_scenario(text: str, path: Path | str = "<scenario>",
                   overrides: Overrides = ()) -> Scenario:
    """Validate scenario YAML `text` with `overrides` applied; `path` is only used in error
    messages."""
    document = read_document(text, path)
    data, root = document.data, document.root
    if not isinstance(data, dict) or root is None:
        raise ScenarioError(path, 1, "expected a mapping of scenario keys (name, target, ...)")
    for shown, key, value in _override_items(overrides, path):
        _override(data, shown, key, value, path)
    try:
        scenario = Scenario.model_validate(data, context=FROM_FILE)
    except ValidationError as exc:
        error = _first(exc.errors())
        loc = _untagged(tuple(error["loc"]))
        raise ScenarioError(path, _line_of(root, loc), _describe(loc, error)) from None
    _check_timeline(scenario, root, path)
    _check_shape(scenario, root, path)
    _check_references(scenario, root, path)
    return scenario


_KEY_VALUE = "expected key.path=value, for example duration=30s or target.env.MODE=naive"


def _override_items(overrides: Overrides, path: Path | str) -> Iterator[tuple[str, str, Any]]:
    """Each override as (how it was written, dotted key, value)."""
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            yield _shortened(f"{key}={value!r}"), key, value
        return
    for override in overrides:
        key, sep, raw = override.partition("=")
        shown = _shortened(override)
        if not sep:
            raise ScenarioError(path, None, f"override {shown!r}: {_KEY_VALUE}")
        try:
            value = read_value(raw)
        except yaml.MarkedYAMLError as exc:
            raise ScenarioError(path, None, f"override {shown!r}: the value is not YAML "
                                f"({exc.problem})") from None
        except (yaml.YAMLError, RecursionError):
            raise ScenarioError(path, None,
                                f"override {shown!r}: the value is not YAML") from None
        yield shown, key, value


def _shortened(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _override(document: dict[str, Any], override: str, key: str, value: Any,
              path: Path | str) -> None:
    """Set `value` at the dotted `key` of the document just parsed from the text (ours to
    change; `override` as written, for errors)."""
    parts = key.strip().split(".")
    if not all(parts):
        raise ScenarioError(path, None, f"override {override!r}: {_KEY_VALUE}")
    node: Any = document
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part) if isinstance(node, dict) else None
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[:depth + 1])
            raise ScenarioError(path, None, f"override {override!r}: {where} is not a mapping")
        node = child
    node[parts[-1]] = value


def _check_timeline(scenario: Scenario, root: yaml.Node, path: Path | str) -> None:
    """Each step's window fits the run: it starts in it, ends in it, and lasts."""
    for index, step in enumerate(scenario.timeline):
        where = f"timeline[{index}]"
        if step.at >= scenario.duration:
            raise ScenarioError(path, _line_of(root, ("timeline", index, "at")),
                                f"{where}.at: starts at {_span(step.at)}, after the "
                                f"run's {_span(scenario.duration)}")
        if step.duration is None:
            if "duration" in step.model_fields_set:
                raise ScenarioError(path, _line_of(root, ("timeline", index, "for")),
                                    f"{where}.for: no duration given; write one such as 30s, "
                                    "or leave `for` out for a fault that lasts to the run's end")
            continue
        if step.duration <= 0:
            raise ScenarioError(path, _line_of(root, ("timeline", index, "for")),
                                f"{where}.for: lasts 0s; a step lasts more than that")
        end = step.at + step.duration
        if end > scenario.duration:
            raise ScenarioError(path, _line_of(root, ("timeline", index, "for")),
                                f"{where}.for: ends at {_span(end)}, after the run's "
                                f"{_span(scenario.duration)} (leave `for` out for a fault "
                                "that lasts to the run's end)")


def _check_shape(scenario: Scenario, root: yaml.Node, path: Path | str) -> None:
    """The shape fits the run: its windows in the load, a month where it counts days, a
    peak above the base rate."""
    reminders, duration = scenario.reminders, scenario.duration
    shape, month = reminders.shape, reminders.month
    where = ("reminders", "shape")

    def fail(key: str, message: str) -> None:
        raise ScenarioError(path, _line_of(root, (*where, key)),
                            f"reminders.shape.{key}: {message}")

    if month is not None and month.faketime and scenario.target.image is not None:
        raise ScenarioError(path, _line_of(root, ("reminders", "month", "faketime")),
                            "reminders.month.faketime: libfaketime is preloaded into a process "
                            "target, not into a container image (target.image is set)")
    if not scenario.paced:
        return
    what = f"a {shape.kind} shape" if month is None else "a month"
    if scenario.load.remote_workers:
        raise ScenarioError(path, _line_of(root, ("load", "remote_workers")),
                            f"load.remote_workers: {what} is paced by local workers only; "
                            "leave load.remote_workers at 0")
    if scenario.load.users < scenario.load.workers:
        raise ScenarioError(path, _line_of(root, ("load", "users")),
                            f"load.users: {what} gives each worker a part of its ticks, and "
                            f"each needs a user: give at least load.workers "
                            f"({scenario.load.workers})")
    if isinstance(shape, Spike) and shape.at + shape.lasting > duration:
        fail("for", f"the spike ends at {_span(shape.at + shape.lasting)}, after the run's "
             f"{_span(duration)}")
    if isinstance(shape, MonthEnd):
        if month is None:
            fail("kind", "month_end counts calendar days: give reminders.month "
                 "(e.g. {start: 2026-12-01, days: 30})")
        elif shape.last_days >= month.days:
            fail("last_days", f"{shape.last_days:g} days is not the end of a "
                 f"{month.days}-day month")
        if shape.peak <= reminders.rate:
            fail("peak", f"{shape.peak:g}/s is no peak over reminders.rate "
                 f"({reminders.rate:g}/s)")
    if isinstance(shape, MorningBatch):
        if shape.at is not None and shape.at + shape.within > duration:
            fail("at", f"the batch ends at {_span(shape.at + shape.within)}, after the run's "
                 f"{_span(duration)}")
        if shape.daily is not None:
            if month is None:
                fail("daily", "a time of day needs the calendar: give reminders.month "
                     "(e.g. {start: 2026-12-01, days: 30}), or use at: <duration>")
            else:
                day = DAY / month.speed(duration)
                if shape.within >= day:
                    fail("within", f"{_span(shape.within)} is longer than a compressed "
                         f"day ({_span(round(day, 3))})")


def _span(seconds: float) -> str:
    """`90s`, `1.5s`, `250ms`: a time as a person reads it in a message."""
    return f"{seconds * 1000:g}ms" if 0 < seconds < 1 else f"{seconds:g}s"


def _check_references(scenario: Scenario, root: yaml.Node, path: Path | str) -> None:
    """Checks that span sections: links name known vendors, placeholders are known."""
    contracted = [*scenario.vendors, *scenario.channels]
    for name in scenario.slas:
        if name not in contracted:
            raise ScenarioError(path, _line_of(root, ("slas", name)),
                                f"slas.{name}: no vendor or channel named {name!r}; "
                                f"known: {', '.join(contracted)}")
    upgrades = 0
    for index, step in enumerate(scenario.timeline):
        family = FAULTS[step.fault].family
        line = _line_of(root, ("timeline", index, "link"))
        on_target = step.link == "target" or step.link in scenario.instance_links
        if family == "process" and step.link not in scenario.instance_links:
            raise ScenarioError(
                path, line, f"timeline[{index}].link: {step.fault} acts on an instance of the "
                f"target; got {step.link!r}, known: {', '.join(scenario.instance_links)}")
        if family == "upgrade":
            _check_upgrade_step(scenario, step, index, upgrades, root, path)
            upgrades += 1
        if family not in ("process", "upgrade") and on_target:
            raise ScenarioError(
                path, line, f"timeline[{index}].link: only process faults and the upgrade act "
                f"on the target; got {step.fault} on {step.link!r}")
        if family not in ("process", "upgrade") and step.link not in scenario.links:
            raise ScenarioError(
                path, _line_of(root, ("timeline", index, "link")),
                f"timeline[{index}].link: unknown link {step.link!r}; "
                f"known: {', '.join(scenario.links)}")
        if family == "vendor" and not step.link.startswith("vendors."):
            raise ScenarioError(
                path, _line_of(root, ("timeline", index, "link")),
                f"timeline[{index}].link: {step.fault} needs a vendor link (vendors.<name>), "
                f"got {step.link!r}")
        if family in ("email", "push") and step.link != family:
            raise ScenarioError(
                path, _line_of(root, ("timeline", index, "link")),
                f"timeline[{index}].link: {step.fault} acts on link {family!r} (the scenario's "
                f"channels.{family}), got {step.link!r}")
        if family == "data" and step.link != "ledger":
            raise ScenarioError(
                path, _line_of(root, ("timeline", index, "link")),
                f"timeline[{index}].link: {step.fault} acts on link 'ledger', got {step.link!r}")
    if scenario.demonstrates is not None:
        gates = {gate.expr for gate in scenario.gates}
        for index, gate in enumerate(scenario.demonstrates.fails):
            if gate.expr not in gates:
                raise ScenarioError(
                    path, _line_of(root, ("demonstrates", "fails", index)),
                    f"demonstrates.fails[{index}]: {gate.expr!r} is not one of the scenario's "
                    f"gates ({', '.join(sorted(gates)) or 'none'})")
    known = scenario.placeholders()
    templated: list[tuple[tuple[str | int, ...], str]] = [
        (("target", "health"), scenario.target.health),
        *((("target", "command", i), arg)
          for i, arg in enumerate(scenario.target.command or ())),
        *((("target", "env", key), value) for key, value in scenario.target.env.items()),
        *((("vendors", name, key), url) for name, vendor in scenario.vendors.items()
          for key in ("report_url", "inbound_url") if (url := getattr(vendor, key))),
        *_upgrade_templates(scenario.upgrade),
    ]
    for loc, text in templated:
        for name in placeholders_in(text):
            if name not in known:
                raise ScenarioError(
                    path, _line_of(root, loc),
                    f"{_dotted(loc)}: unknown placeholder {{{name}}}; "
                    f"known: {', '.join(sorted(known))}")


def _upgrade_templates(upgrade: Upgrade | None
                       ) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Where the upgrade section may hold placeholders: version B's target and the migration."""
    if upgrade is None:
        return
    target = upgrade.target
    yield ("upgrade", "target", "health"), target.health
    yield ("upgrade", "target", "cwd"), target.cwd
    yield from ((("upgrade", "target", "command", i), arg)
                for i, arg in enumerate(target.command or ()))
    yield from ((("upgrade", "target", "env", key), value) for key, value in target.env.items())
    if upgrade.migrate is not None:
        migrate = upgrade.migrate
        yield ("upgrade", "migrate", "cwd"), migrate.cwd
        yield from ((("upgrade", "migrate", "command", i), arg)
                    for i, arg in enumerate(migrate.command))
        yield from ((("upgrade", "migrate", "env", key), value)
                    for key, value in migrate.env.items())


def _check_upgrade_step(scenario: Scenario, step: Step, index: int, before: int,
                        root: yaml.Node, path: Path | str) -> None:
    """An upgrade step cuts the whole target over once, to the scenario's version B."""
    where = f"timeline[{index}]"
    if scenario.upgrade is None:
        raise ScenarioError(path, _line_of(root, ("timeline", index, "fault")),
                            f"{where}.fault: an upgrade step needs the scenario's upgrade "
                            "section (version B's target, and its migration)")
    if step.link != "target":
        raise ScenarioError(path, _line_of(root, ("timeline", index, "link")),
                            f"{where}.link: an upgrade acts on link 'target' (every instance), "
                            f"got {step.link!r}")
    if step.duration is not None:
        raise ScenarioError(path, _line_of(root, ("timeline", index, "for")),
                            f"{where}.for: an upgrade is over when version B is ready; "
                            "leave `for` out")
    if before:
        raise ScenarioError(path, _line_of(root, ("timeline", index)),
                            f"{where}: a scenario upgrades once; the upgrade section "
                            "holds one version B")
    wanted, given = len(scenario.target.instance_names), len(
        scenario.upgrade.target.instance_names)
    if wanted != given:
        raise ScenarioError(path, _line_of(root, ("upgrade", "target")),
                            f"upgrade.target: {given} instance(s), but the target has {wanted}; "
                            "version B replaces each instance of version A")


def _first(errors: list[Any]) -> Any:
    """The error to tell: an unknown key before a missing one (a misspelt key is both, and the
    unknown one is where the typo is), else the first."""
    for error in errors:
        if error["type"] == "extra_forbidden":
            return error
    return errors[0]


SHAPES = ("steady", "morning_batch", "month_end", "spike")
"""The kinds of `reminders.shape`."""


def _untagged(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`loc` without the tag pydantic puts after a tagged union (reminders.shape.spike.at is
    reminders.shape.at in the file)."""
    if loc[:2] == ("reminders", "shape") and len(loc) > 2 and loc[2] in SHAPES:
        return loc[:2] + loc[3:]
    return loc


def _describe(loc: tuple[str | int, ...], error: Any) -> str:
    where = _dotted(loc) or "scenario"
    if error["type"] in ("union_tag_not_found", "union_tag_invalid"):
        given = error.get("input", {}).get("kind") if isinstance(error.get("input"), dict) \
            else None
        return (f"{where}.kind: " + ("required key is missing" if given is None
                                     else f"unknown kind {given!r}")
                + f"; known: {', '.join(SHAPES)}")
    message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _keys_at(loc[:-1]), n=1)
        return f"{where}: unknown key" + (f"; did you mean {close[0]}?" if close else "")
    if loc[-1:] == ("[key]",):  # a mapping's key, not its value, is wrong
        return f"{_dotted(loc[:-2]) or 'scenario'}: key {loc[-2]!r}: {message}"
    value = error.get("input")
    # Our own checks (value errors) say what was wrong, naming the value where it helps;
    # pydantic's own messages ("should be a valid integer") need the scalar they refused.
    if error["type"] != "value_error" and (isinstance(value, str | int | float | bool)
                                           or value is None):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return f"{where}: {message} (got {shown})"
    return f"{where}: {message}"


def _keys_at(loc: tuple[str | int, ...]) -> list[str]:
    """The keys the model takes at `loc` (their file names: `for`, not `duration`)."""
    model: Any = Scenario
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            fields = {field.alias or name: field for name, field in model.model_fields.items()}
            if not isinstance(part, str) or part not in fields:
                return []
            model = fields[part].annotation
        else:  # a dict's key or a list's index: the model of its values
            model = _values_of(model)
        while typing.get_origin(model) in (typing.Union, types.UnionType):
            model = next(arg for arg in typing.get_args(model) if arg is not type(None))
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [field.alias or name for name, field in model.model_fields.items()]
    return []


def _values_of(model: Any) -> Any:
    args = typing.get_args(model)
    return args[-1] if args else None


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        # A key that is not a plain name (a newline, a space) is quoted, so the message stays
        # one line and shows where the key ends.
        name = part if _PLAIN_KEY.fullmatch(part) else repr(part)
        out += f".{name}" if out else name
    return out


_PLAIN_KEY = re.compile(r"[\w\-\[\]]+")


def _line_of(root: yaml.Node, loc: tuple[str | int, ...]) -> int:
    """The 1-based line of the YAML node at `loc`, or of its deepest existing parent."""
    node = root
    line = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line = key.start_mark.line + 1
                    node = value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
