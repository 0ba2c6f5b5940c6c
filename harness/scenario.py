"""The scenario model: one YAML file loaded into a validated, typed `Scenario`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.durations import Duration, Rate
from harness.errors import ScenarioError
from harness.faults import FAULTS, check_params
from harness.gates import Gate, parse_gate
from mocks.catalogue import credential_keys
from mocks.handsets import HandsetConfig
from mocks.manifest import VendorConfig


def _gate(value: Any) -> Any:
    return parse_gate(value) if isinstance(value, str) else value


GateExpr = Annotated[
    Gate,
    BeforeValidator(_gate),
    PlainSerializer(lambda gate: gate.expr, return_type=str),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Target(_Model):
    """How to start the notifier under test and know it is ready (see docs/target-contract.md)."""

    command: list[str] = Field(min_length=1)
    cwd: str = "."
    env: dict[str, str] = {}
    health: str
    ready_timeout: Duration = 30.0

    @field_validator("health")
    @classmethod
    def _health_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "tcp://")):
            raise ValueError("expected an http:// URL or tcp://host:port")
        return value


class Population(_Model):
    """The borrowers Locust draws installments for."""

    borrowers: int = Field(default=1000, ge=1)
    locale: str = "zh_CN"


class Correlation(_Model):
    """How a delivered message is matched to the reminder it carries."""

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


class Reminders(_Model):
    """How fast reminders fall due and how long each has to reach the inbox."""

    rate: Rate = Field(gt=0)
    window: Duration = Field(gt=0)
    correlate: Correlation


class Load(_Model):
    """The Locust users that make installments fall due."""

    users: int = Field(default=10, ge=1)
    spawn_rate: Rate = Field(default=10.0, gt=0)


class Sla(_Model):
    """What a vendor's contract promises, as the notifier sees the vendor's API."""

    availability: float | None = Field(default=None, gt=0, le=1,
                                       description="share of calls answered (not down, "
                                       "throttled or lost)")
    p95_latency: Duration | None = Field(default=None, gt=0)


class Step(_Model):
    """One fault on the timeline: when, for how long, what, and where."""

    at: Duration
    duration: Duration | None = Field(default=None, alias="for")
    fault: str
    link: str
    params: dict[str, float | int | str] = {}

    @field_validator("fault")
    @classmethod
    def _known_fault(cls, value: str) -> str:
        if value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; known: {', '.join(FAULTS)}")
        return value

    @field_validator("params")
    @classmethod
    def _params_fit(cls, value: dict[str, float | int | str],
                    info: ValidationInfo) -> dict[str, float | int | str]:
        fault = info.data.get("fault")
        if fault is not None:  # else the fault itself was wrong and is reported
            check_params(FAULTS[fault], value)
        return value


class Scenario(_Model):
    """A whole rehearsal: the target, its vendors, the load, the fault timeline and the gates."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    about: str = ""
    seed: int = 0
    duration: Duration = Field(gt=0)
    drain: Duration | None = None
    target: Target
    vendors: dict[str, VendorConfig] = Field(min_length=1)
    handsets: HandsetConfig = HandsetConfig()
    slas: dict[str, Sla] = {}
    population: Population = Population()
    reminders: Reminders
    load: Load = Load()
    timeline: list[Step] = []
    gates: list[GateExpr] = []

    @field_validator("vendors")
    @classmethod
    def _vendor_names(cls, value: dict[str, VendorConfig]) -> dict[str, VendorConfig]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
                raise ValueError(f"vendor name {name!r}: use lower-case letters, digits, _ or -")
        return value

    @property
    def drain_seconds(self) -> float:
        """How long the run keeps watching after load stops: by default one reminder window."""
        return self.reminders.window if self.drain is None else self.drain

    @property
    def links(self) -> list[str]:
        """The Toxiproxy links of this run: the ledger and one per vendor."""
        return ["ledger", *(f"vendors.{name}" for name in self.vendors)]

    def placeholders(self) -> set[str]:
        """Every placeholder name a target may use in this scenario."""
        names = {"ledger.url", "alerts.url", "mocks.ca_bundle", "target.host", "target.port",
                 "target.url", "run.dir", "run.seed"}
        for name, vendor in self.vendors.items():
            names |= {f"vendors.{name}.url", f"vendors.{name}.host", f"vendors.{name}.port"}
            names |= {f"vendors.{name}.credentials.{key}" for key in credential_keys(vendor.kind)}
        return names


PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-zA-Z0-9_.\-]+)\}")
"""A `{name}` placeholder (group 1), or an escaped `{{` / `}}` (no group)."""


def placeholders_in(text: str) -> list[str]:
    """The placeholder names used in `text` (`{{`/`}}` are literal braces)."""
    return [match.group(1) for match in PLACEHOLDER.finditer(text) if match.group(1)]


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file; any problem is a ScenarioError with file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(path, None, f"cannot read the file: {exc.strerror}") from None
    return parse_scenario(text, path)


def parse_scenario(text: str, path: Path | str = "<scenario>") -> Scenario:
    """Validate scenario YAML `text`; `path` is only used in error messages."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ScenarioError(path, line, f"not valid YAML: {exc.problem}") from None
    if not isinstance(data, dict) or root is None:
        raise ScenarioError(path, 1, "expected a mapping of scenario keys (name, target, ...)")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        raise ScenarioError(path, _line_of(root, loc), _describe(loc, error)) from None
    _check_references(scenario, root, path)
    return scenario


def _check_references(scenario: Scenario, root: yaml.Node, path: Path | str) -> None:
    """Checks that span sections: links name known vendors, placeholders are known."""
    for name in scenario.slas:
        if name not in scenario.vendors:
            raise ScenarioError(path, _line_of(root, ("slas", name)),
                                f"slas.{name}: no vendor named {name!r}; "
                                f"known: {', '.join(scenario.vendors)}")
    for index, step in enumerate(scenario.timeline):
        family = FAULTS[step.fault].family
        if (family == "process") != (step.link == "target"):
            raise ScenarioError(
                path, _line_of(root, ("timeline", index, "link")),
                f"timeline[{index}].link: process faults act on link 'target' and only they do; "
                f"got {step.fault} on {step.link!r}")
        if family != "process" and step.link not in scenario.links:
            raise ScenarioError(
                path, _line_of(root, ("timeline", index, "link")),
                f"timeline[{index}].link: unknown link {step.link!r}; "
                f"known: {', '.join(scenario.links)}")
        if family == "vendor" and not step.link.startswith("vendors."):
            raise ScenarioError(
                path, _line_of(root, ("timeline", index, "link")),
                f"timeline[{index}].link: {step.fault} needs a vendor link (vendors.<name>), "
                f"got {step.link!r}")
        if family == "data" and step.link != "ledger":
            raise ScenarioError(
                path, _line_of(root, ("timeline", index, "link")),
                f"timeline[{index}].link: {step.fault} acts on link 'ledger', got {step.link!r}")
        if step.at >= scenario.duration:
            raise ScenarioError(
                path, _line_of(root, ("timeline", index, "at")),
                f"timeline[{index}].at: starts at {step.at:g}s, after the run's "
                f"{scenario.duration:g}s")
    known = scenario.placeholders()
    templated: list[tuple[tuple[str | int, ...], str]] = [
        (("target", "health"), scenario.target.health),
        *((("target", "command", i), arg) for i, arg in enumerate(scenario.target.command)),
        *((("target", "env", key), value) for key, value in scenario.target.env.items()),
        *((("vendors", name, key), url) for name, vendor in scenario.vendors.items()
          for key in ("report_url", "inbound_url") if (url := getattr(vendor, key))),
    ]
    for loc, text in templated:
        for name in placeholders_in(text):
            if name not in known:
                raise ScenarioError(
                    path, _line_of(root, loc),
                    f"{_dotted(loc)}: unknown placeholder {{{name}}}; "
                    f"known: {', '.join(sorted(known))}")


def _describe(loc: tuple[str | int, ...], error: Any) -> str:
    where = _dotted(loc) or "scenario"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    return f"{where}: {message} (got {error.get('input')!r})"


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


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
