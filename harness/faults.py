"""The catalogue of fault kinds a timeline step may name, and how their parameters are checked.

Four families: network faults, carried out by the real Toxiproxy server on a link; vendor and
data faults, switched in a vendor mock or the ledger through its control API; and process faults
on the target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from mocks.control import LedgerFaults, VendorFaults

Params = Mapping[str, float | int | str]


@dataclass(frozen=True)
class FaultKind:
    """A fault the harness knows: its name, its family, and its parameters."""

    name: str
    about: str
    family: Literal["network", "vendor", "data", "process"]
    attributes: tuple[str, ...] = ()
    toxic: str | None = None  # network: the Toxiproxy toxic type; None for `proxy.down`
    switches: Callable[[Params], dict[str, Any]] | None = None  # vendor, data: mock faults
    instant: bool = False  # over as soon as it is done: nothing to undo


def _network(name: str, about: str, attributes: tuple[str, ...] = (),
             toxic: str | None = None) -> FaultKind:
    return FaultKind(name, about, "network", attributes, toxic)


def _vendor(name: str, about: str, attributes: tuple[str, ...],
            switches: Callable[[Params], dict[str, Any]]) -> FaultKind:
    return FaultKind(name, about, "vendor", attributes, switches=switches)


def _data(name: str, about: str, attributes: tuple[str, ...],
          switches: Callable[[Params], dict[str, Any]]) -> FaultKind:
    return FaultKind(name, about, "data", attributes, switches=switches)


def _process(name: str, about: str, instant: bool = False) -> FaultKind:
    return FaultKind(name, about, "process", instant=instant)


def _numbers(params: Params) -> frozenset[str]:
    return frozenset(n.strip() for n in str(params.get("numbers", "")).split(",") if n.strip())


FAULTS: dict[str, FaultKind] = {kind.name: kind for kind in (
    _network("proxy.down", "the link refuses connections and drops open ones"),
    _network("proxy.latency", "delay each chunk (ms), with jitter (ms)", ("latency", "jitter"),
             "latency"),
    _network("proxy.bandwidth", "limit throughput to rate KB/s", ("rate",), "bandwidth"),
    _network("proxy.slow_close", "delay the close by delay ms", ("delay",), "slow_close"),
    _network("proxy.timeout", "swallow all data; close after timeout ms (0: never)",
             ("timeout",), "timeout"),
    _network("proxy.reset_peer", "reset the connection after timeout ms", ("timeout",),
             "reset_peer"),
    _network("proxy.slicer", "cut data into small chunks",
             ("average_size", "size_variation", "delay"), "slicer"),
    _network("proxy.limit_data", "close after bytes have passed", ("bytes",), "limit_data"),
    _vendor("vendor.outage", "every send fails with HTTP status (default 503), vendor-style",
            ("status",), lambda p: {"outage": int(p.get("status", 503))}),
    _vendor("vendor.throttle", "every send gets the vendor's rate-limit error", (),
            lambda p: {"throttle": True}),
    _vendor("vendor.latency", "the vendor answers after latency ms", ("latency",),
            lambda p: {"latency": float(p.get("latency", 0)) / 1000}),
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
    _vendor("vendor.dlr", "delivery reports delayed (ms), lost, duplicated (fractions) or "
            "reordered (0/1)", ("delay", "loss", "duplicate", "reorder"),
            lambda p: {"dlr_delay": float(p.get("delay", 0)) / 1000,
                       "dlr_loss": p.get("loss", 0.0), "dlr_duplicate": p.get("duplicate", 0.0),
                       "dlr_reorder": bool(p.get("reorder", 0))}),
    _data("data.stale", "the ledger's replica lags the truth by lag ms", ("lag",),
          lambda p: {"lag": float(p.get("lag", 0)) / 1000}),
    _data("data.drop", "a fraction of reminders never reaches the replica", ("fraction",),
          lambda p: {"drop": p.get("fraction", 1.0)}),
    _data("data.drift", "a fraction of reminders is replicated with field (phone, amount, "
          "due_date) changed", ("fraction", "field"),
          lambda p: {"drift": p.get("fraction", 1.0), "drift_field": p.get("field", "phone")}),
    _data("data.duplicate", "a fraction of reminders is replicated twice", ("fraction",),
          lambda p: {"duplicate": p.get("fraction", 1.0)}),
    _data("data.schema", "the pull API's schema changes: change renamed_field or date_format",
          ("change",), lambda p: {"schema_change": p.get("change", "renamed_field")}),
    _process("process.pause", "freeze the target (SIGSTOP) until the step ends (SIGCONT)"),
    _process("process.kill", "kill the target (SIGKILL); start it again when the step ends"),
    _process("process.restart", "restart the target cleanly (SIGTERM, then start)",
             instant=True),
)}

NETWORK_COMMON = ("stream", "toxicity")

MOCK_FAULTS: dict[str, type[VendorFaults] | type[LedgerFaults]] = {
    "vendor": VendorFaults, "data": LedgerFaults}
"""The control-API model each mock-switched family speaks."""


def check_params(kind: FaultKind, params: Params) -> None:
    """Raise ValueError when `params` do not fit `kind` (unknown names, bad values)."""
    allowed = kind.attributes + (NETWORK_COMMON if kind.toxic else ())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) or "no parameters"
        raise ValueError(f"{kind.name} does not take {', '.join(unknown)} (expected {expected})")
    if kind.family in ("vendor", "data"):
        _check_switches(kind, params)
    elif kind.family == "network":
        _check_network(kind, params)


def _check_switches(kind: FaultKind, params: Params) -> None:
    assert kind.switches is not None
    try:
        MOCK_FAULTS[kind.family].model_validate(kind.switches(params))
    except (ValidationError, ValueError, TypeError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"{kind.name}: {detail}") from None


def _check_network(kind: FaultKind, params: Params) -> None:
    stream = params.get("stream", "downstream")
    if stream not in ("upstream", "downstream"):
        raise ValueError(f"stream must be upstream or downstream, got {stream!r}")
    toxicity = params.get("toxicity", 1.0)
    if not isinstance(toxicity, int | float) or not 0.0 <= toxicity <= 1.0:
        raise ValueError(f"toxicity must be a number from 0 to 1, got {toxicity!r}")
    for name in kind.attributes:
        value = params.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{kind.name} {name} must be a whole number >= 0, got {value!r}")
    if kind.toxic == "slicer":
        # The server recurses forever on average_size 0 and panics when the variation is too
        # large, taking every proxy down with it (see the Toxiproxy notes).
        average, variation = params.get("average_size", 0), params.get("size_variation", 0)
        if not isinstance(average, int) or average <= 0:
            raise ValueError("proxy.slicer needs average_size > 0")
        if not isinstance(variation, int) or variation >= average:
            raise ValueError("proxy.slicer needs size_variation < average_size")
