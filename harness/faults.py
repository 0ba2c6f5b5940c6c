"""The catalogue of fault kinds a timeline step may name, and how their parameters are checked.

Seven families: network faults, carried out by the real Toxiproxy server on a link; vendor,
email, push and data faults, switched in a vendor mock, the mail server, the push service or the
ledger through its control API; process faults on an instance of the target; and the upgrade,
which cuts the target over to the scenario's version B.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from harness.durations import parse_duration
from mocks.control import LedgerFaults, MailFaults, PushFaults, VendorFaults

Params = Mapping[str, float | int | str]

Family = Literal["network", "vendor", "email", "push", "data", "process", "upgrade"]
SWITCHED: tuple[Family, ...] = ("vendor", "email", "push", "data")
"""The families switched in a mock through its control API."""


MS = 0.001
"""Seconds in a millisecond: Toxiproxy's unit for most of its toxics' times."""
US = 0.000001
"""Seconds in a microsecond: the slicer toxic's unit for its delay."""


@dataclass(frozen=True)
class FaultKind:
    """A fault the harness knows: its name, its family, and its parameters.

    `times` names the parameters that are durations, each with the unit a step's params keep
    it in once read (the unit Toxiproxy takes, and the journal has always recorded): a file
    writes them as durations (`800ms`, `2s`).
    """

    name: str
    about: str
    family: Family
    attributes: tuple[str, ...] = ()
    toxic: str | None = None  # network: the Toxiproxy toxic type; None for `proxy.down`
    switches: Callable[[Params], dict[str, Any]] | None = None  # vendor, data: mock faults
    instant: bool = False  # over as soon as it is done: nothing to undo
    times: Mapping[str, float] = field(default_factory=dict)


def _network(name: str, about: str, attributes: tuple[str, ...] = (),
             toxic: str | None = None, times: Mapping[str, float] | None = None) -> FaultKind:
    return FaultKind(name, about, "network", attributes, toxic, times=times or {})


def _vendor(name: str, about: str, attributes: tuple[str, ...],
            switches: Callable[[Params], dict[str, Any]],
            times: Mapping[str, float] | None = None) -> FaultKind:
    return FaultKind(name, about, "vendor", attributes, switches=switches, times=times or {})


def _switched(family: Family) -> Callable[..., FaultKind]:
    def kind(name: str, about: str, attributes: tuple[str, ...],
             switches: Callable[[Params], dict[str, Any]],
             times: Mapping[str, float] | None = None) -> FaultKind:
        return FaultKind(name, about, family, attributes, switches=switches, times=times or {})

    return kind


_data = _switched("data")
_email = _switched("email")
_push = _switched("push")


def _process(name: str, about: str, instant: bool = False) -> FaultKind:
    return FaultKind(name, about, "process", instant=instant)


def _seconds(params: Params, name: str) -> float:
    """A time parameter kept in milliseconds, in seconds (what the mocks take)."""
    return float(params.get(name, 0)) * MS


def _numbers(params: Params) -> frozenset[str]:
    return frozenset(n.strip() for n in str(params.get("numbers", "")).split(",") if n.strip())


FAULTS: dict[str, FaultKind] = {kind.name: kind for kind in (
    _network("proxy.down", "the link refuses connections and drops open ones"),
    _network("proxy.latency", "delay each chunk by latency, with jitter", ("latency", "jitter"),
             "latency", {"latency": MS, "jitter": MS}),
    _network("proxy.bandwidth", "limit throughput to rate KB/s", ("rate",), "bandwidth"),
    _network("proxy.slow_close", "delay the close by delay", ("delay",), "slow_close",
             {"delay": MS}),
    _network("proxy.timeout", "swallow all data; close after timeout (0s: never)",
             ("timeout",), "timeout", {"timeout": MS}),
    _network("proxy.reset_peer", "reset the connection after timeout", ("timeout",),
             "reset_peer", {"timeout": MS}),
    _network("proxy.slicer", "cut data into chunks of average_size ± size_variation bytes, "
             "delay apart", ("average_size", "size_variation", "delay"), "slicer",
             {"delay": US}),
    _network("proxy.limit_data", "close after bytes have passed", ("bytes",), "limit_data"),
    _vendor("vendor.outage", "every send fails with HTTP status (default 503), vendor-style",
            ("status",), lambda p: {"outage": p.get("status", 503)}),
    _vendor("vendor.throttle", "every send gets the vendor's rate-limit error", (),
            lambda p: {"throttle": True}),
    _vendor("vendor.latency", "the vendor answers after latency", ("latency",),
            lambda p: {"latency": _seconds(p, "latency")}, {"latency": MS}),
    _vendor("vendor.drop", "a fraction of accepted sends is never delivered", ("fraction",),
            lambda p: {"drop": p.get("fraction", 1.0)}),
    _vendor("vendor.response_lost", "a fraction of sends is recorded, then the connection "
            "closes with no answer", ("fraction",),
            lambda p: {"response_lost": p.get("fraction", 1.0)}),
    _vendor("vendor.partial", "a fraction of the recipients of multi-recipient sends fail",
            ("fraction",), lambda p: {"partial": p.get("fraction", 1.0)}),
    _vendor("vendor.invalid_numbers", "these numbers (comma-separated) are refused as invalid",
            ("numbers",), lambda p: {"invalid_numbers": _numbers(p)}),
    _vendor("vendor.barred_numbers", "these numbers (comma-separated) are refused as barred",
            ("numbers",), lambda p: {"barred_numbers": _numbers(p)}),
    _vendor("vendor.dlr", "delivery reports delayed (delay), lost, duplicated (fractions) or "
            "reordered (0/1)", ("delay", "loss", "duplicate", "reorder"),
            lambda p: {"dlr_delay": _seconds(p, "delay"),
                       "dlr_loss": p.get("loss", 0.0), "dlr_duplicate": p.get("duplicate", 0.0),
                       "dlr_reorder": p.get("reorder", 0)}, {"delay": MS}),
    _vendor("vendor.template_rejected", "every send is refused: the message template is no "
            "longer approved (a rule change), in the vendor's own words", (),
            lambda p: {"rejects": "template"}),
    _vendor("vendor.signature_rejected", "every send is refused: the sender signature is no "
            "longer approved, in the vendor's own words", (),
            lambda p: {"rejects": "signature"}),
    _vendor("vendor.content_filter", "the carrier's content rule: accepted messages whose text "
            "matches pattern are dropped silently (action: drop) or diverted to the spam folder "
            "(action: spam)", ("pattern", "action"),
            lambda p: {"content_filter": p.get("pattern", "https?://"),
                       "content_action": p.get("action", "drop")}),
    _email("email.greylist", "greylisting: each message's first attempt gets 451, and retries "
           "sooner than retry_after too", ("retry_after",),
           lambda p: {"greylist": _seconds(p, "retry_after") or 5.0}, {"retry_after": MS}),
    _email("email.reject", "every message is refused with status (default 554)", ("status",),
           lambda p: {"reject": p.get("status", 554)}),
    _email("email.slow_data", "the reply to the end of DATA comes after delay", ("delay",),
           lambda p: {"data_delay": _seconds(p, "delay")}, {"delay": MS}),
    _email("email.drop_after_data", "a fraction of messages is recorded, then the connection "
           "closes with no reply (the lost response of SMTP)", ("fraction",),
           lambda p: {"drop_after_data": p.get("fraction", 1.0)}),
    _push("push.unavailable", "every send gets 503 UNAVAILABLE", (),
          lambda p: {"unavailable": True}),
    _push("push.quota", "every send gets 429 QUOTA_EXCEEDED", (), lambda p: {"quota": True}),
    _push("push.latency", "the push service answers after latency", ("latency",),
          lambda p: {"latency": _seconds(p, "latency")}, {"latency": MS}),
    _data("data.stale", "the ledger's replica lags the truth by lag", ("lag",),
          lambda p: {"lag": _seconds(p, "lag")}, {"lag": MS}),
    _data("data.drop", "a fraction of reminders never reaches the replica", ("fraction",),
          lambda p: {"drop": p.get("fraction", 1.0)}),
    _data("data.drift", "a fraction of reminders is replicated with field (phone, amount, "
          "due_date) changed", ("fraction", "field"),
          lambda p: {"drift": p.get("fraction", 1.0), "drift_field": p.get("field", "phone")}),
    _data("data.duplicate", "a fraction of reminders is replicated twice", ("fraction",),
          lambda p: {"duplicate": p.get("fraction", 1.0)}),
    _data("data.schema", "the pull API's schema changes: change renamed_field or date_format",
          ("change",), lambda p: {"schema_change": p.get("change", "renamed_field")}),
    _data("data.snapshot", "the replica is restored from a snapshot age old: repayments, phone "
          "changes and opt-outs made since are forgotten", ("age",),
          lambda p: {"snapshot_age": _seconds(p, "age")}, {"age": MS}),
    _data("data.test_leak", "records from the test environment reach production: test borrowers "
          "with test phone numbers (records: borrowers) or test amounts (records: amounts), for "
          "a fraction of feed entries", ("fraction", "records"),
          lambda p: {"test_leak": p.get("fraction", 0.1),
                     "test_leak_records": p.get("records", "borrowers")}),
    _process("process.pause", "freeze the target (SIGSTOP) until the step ends (SIGCONT)"),
    _process("process.kill", "kill the target (SIGKILL); start it again when the step ends"),
    _process("process.restart", "restart the target cleanly (SIGTERM, then start)",
             instant=True),
    _process("process.stop", "stop the target cleanly (SIGTERM) for the step, then start it "
             "again: a planned maintenance window"),
    FaultKind("upgrade", "stop version A of the target, run the migration, start version B "
              "(the scenario's upgrade section)", "upgrade", instant=True),
)}

NETWORK_COMMON = ("stream", "toxicity")

MAX_TOXIC_TIME = 3600.0
"""The longest time a toxic takes (seconds): longer is no rehearsal, and far beyond a run."""
MAX_TOXIC_NUMBER = 2**31 - 1
"""The largest number a toxic attribute takes (Toxiproxy's are ints on its wire)."""

MOCK_FAULTS: dict[str, type[VendorFaults | MailFaults | PushFaults | LedgerFaults]] = {
    "vendor": VendorFaults, "email": MailFaults, "push": PushFaults, "data": LedgerFaults}
"""The control-API model each mock-switched family speaks."""


def read_params(kind: FaultKind, params: Params, written: bool) -> dict[str, float | int | str]:
    """`params` checked against `kind`, with its times in their units (see FaultKind.times);
    ValueError says what does not fit.

    A file (`written`) gives times as durations (`800ms`, `2s`): a bare number there is refused,
    for it meant milliseconds before and seconds elsewhere. Params already read (a journal, a
    step made in code) give times as numbers in their units.
    """
    allowed = kind.attributes + (NETWORK_COMMON if kind.toxic else ())
    unknown = sorted(set(params) - set(allowed), key=str)
    if unknown:
        expected = ", ".join(allowed) or "no parameters"
        raise ValueError(f"{kind.name} does not take {', '.join(map(str, unknown))} "
                         f"(expected {expected})")
    read = {name: _time(kind, name, value, written) if name in kind.times else value
            for name, value in params.items()}
    if kind.family in SWITCHED:
        _check_switches(kind, read)
    elif kind.family == "network":
        _check_network(kind, read)
    return read


def written_params(kind: FaultKind, params: Params) -> dict[str, float | int | str]:
    """`params` as a file writes them: times as durations (`800ms`), the rest as they are."""
    return {name: _duration_text(float(value) * kind.times[name] / MS)
            if name in kind.times and isinstance(value, int | float) else value
            for name, value in params.items()}


def _duration_text(ms: float) -> str:
    # Fixed-point, so that a tiny time never becomes 1e-05ms, which is not a duration.
    return f"{ms:.6f}".rstrip("0").rstrip(".") + "ms"


def _time(kind: FaultKind, name: str, value: object, written: bool) -> float | int:
    """A time parameter in its unit: a duration from a file, a number from params read before."""
    unit = kind.times[name]
    if isinstance(value, str):
        try:
            amount = parse_duration(value) / unit
        except ValueError:
            raise ValueError(f"{kind.name} {name}: expected a duration such as 800ms or 2s, "
                             f"got {value!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool) and not written:
        amount = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{kind.name} {name}: a time needs its unit; write {value:g}ms for "
                         "milliseconds (or 2s, 1m)")
    else:
        raise ValueError(f"{kind.name} {name}: expected a duration such as 800ms or 2s, "
                         f"got {value!r}")
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"{kind.name} {name}: expected a duration such as 800ms or 2s")
    whole = round(amount)
    if kind.toxic is not None:
        if abs(amount - whole) > 1e-6:
            step = "microsecond" if unit == US else "millisecond"
            raise ValueError(f"{kind.name} {name}: Toxiproxy takes whole {step}s")
        return whole
    return whole if abs(amount - whole) <= 1e-9 else amount


def _check_switches(kind: FaultKind, params: Params) -> None:
    assert kind.switches is not None
    try:
        MOCK_FAULTS[kind.family].model_validate(kind.switches(params))
    except ValidationError as exc:
        error = exc.errors()[0]
        switch = str(error["loc"][0]) if error["loc"] else ""
        name = _param_of(kind, params, switch)
        bound = error.get("ctx", {})
        if name in kind.times and ("le" in bound or "lt" in bound):
            # The mock's bound is in seconds; the file wrote a duration.
            most = bound.get("le", bound.get("lt"))
            raise ValueError(f"{kind.name} {name}: at most {most:g}s") from None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{kind.name} {name}: {message} (got {_short(error['input'])})"
                         ) from None


def _param_of(kind: FaultKind, params: Params, switch: str) -> str:
    """The parameter that set mock field `switch` (`status` sets `outage`), or the field."""
    assert kind.switches is not None
    default = kind.switches({}).get(switch)
    for name, value in params.items():
        if kind.switches({name: value}).get(switch, default) != default:
            return name
    return switch


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_network(kind: FaultKind, params: Params) -> None:
    stream = params.get("stream", "downstream")
    if stream not in ("upstream", "downstream"):
        raise ValueError(f"stream must be upstream or downstream, got {stream!r}")
    toxicity = params.get("toxicity", 1.0)
    if not isinstance(toxicity, int | float) or isinstance(toxicity, bool) \
            or not 0.0 <= toxicity <= 1.0:
        raise ValueError(f"toxicity must be a number from 0 to 1, got {toxicity!r}")
    for name in kind.attributes:
        value = params.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{kind.name} {name} must be a whole number >= 0, got {value!r}")
        if name in kind.times and value * kind.times[name] > MAX_TOXIC_TIME:
            raise ValueError(f"{kind.name} {name}: at most {MAX_TOXIC_TIME / 3600:g}h")
        if value > MAX_TOXIC_NUMBER:
            raise ValueError(f"{kind.name} {name}: at most {MAX_TOXIC_NUMBER}")
    if kind.toxic == "slicer":
        # The server recurses forever on average_size 0 and panics when the variation is too
        # large, taking every proxy down with it (see the Toxiproxy notes).
        average, variation = params.get("average_size", 0), params.get("size_variation", 0)
        if not isinstance(average, int) or average <= 0:
            raise ValueError("proxy.slicer needs average_size > 0")
        if not isinstance(variation, int) or variation >= average:
            raise ValueError("proxy.slicer needs size_variation < average_size")
