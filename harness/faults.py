"""The catalogue of fault kinds a timeline step may name, and how their parameters are checked."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultKind:
    """A fault the harness knows: its name, what carries it out, and its parameters."""

    name: str
    about: str
    attributes: tuple[str, ...] = ()
    toxic: str | None = None  # the Toxiproxy toxic type; None for `proxy.down`


# Network faults are carried out by the real Toxiproxy server on one link.
NETWORK_FAULTS: dict[str, FaultKind] = {
    kind.name: kind
    for kind in (
        FaultKind("proxy.down", "the link refuses connections and drops open ones"),
        FaultKind("proxy.latency", "delay each chunk (ms), with jitter (ms)",
                  ("latency", "jitter"), "latency"),
        FaultKind("proxy.bandwidth", "limit throughput to rate KB/s", ("rate",), "bandwidth"),
        FaultKind("proxy.slow_close", "delay the close by delay ms", ("delay",), "slow_close"),
        FaultKind("proxy.timeout", "swallow all data; close after timeout ms (0: never)",
                  ("timeout",), "timeout"),
        FaultKind("proxy.reset_peer", "reset the connection after timeout ms", ("timeout",),
                  "reset_peer"),
        FaultKind("proxy.slicer", "cut data into small chunks",
                  ("average_size", "size_variation", "delay"), "slicer"),
        FaultKind("proxy.limit_data", "close after bytes have passed", ("bytes",), "limit_data"),
    )
}

COMMON_PARAMS = ("stream", "toxicity")


def check_params(kind: FaultKind, params: dict[str, float | str]) -> None:
    """Raise ValueError when `params` do not fit `kind` (unknown names, bad values)."""
    allowed = kind.attributes + (COMMON_PARAMS if kind.toxic else ())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) or "no parameters"
        raise ValueError(f"{kind.name} does not take {', '.join(unknown)} (expected {expected})")
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
