"""The network faults every canary must show on its link, with the words of its measurement:
one list for the HTTP probe (test_canary.py) and the SMTP one (test_smtp_canary.py)."""

from __future__ import annotations

from typing import Any

from harness.scenario import Step


def network_step(fault: str, link: str, **params: Any) -> Step:
    return Step.model_validate({"at": 0, "fault": fault, "link": link, "params": params})


def network_cases(link: str) -> list[tuple[Step, str]]:
    """Each `proxy.*` kind on `link`, with what its measurement says when all 5 probes show it."""

    def step(fault: str, **params: Any) -> Step:
        return network_step(fault, link, **params)

    return [
        (step("proxy.down"), "5 of 5 canary connections were refused or closed with no answer"),
        (step("proxy.latency", latency=1000),
         "5 of 5 canary connections were delayed >= 800 ms (asked 1000 ms)"),
        (step("proxy.latency", latency=1000, stream="upstream"), "were delayed >= 800 ms"),
        (step("proxy.timeout", timeout=0),
         "5 of 5 canary connections had no answer within 2000 ms"),
        (step("proxy.timeout", timeout=300), "had no answer within 300 ms"),
        (step("proxy.reset_peer", timeout=0),
         "5 of 5 canary connections were reset or had no full"),
        (step("proxy.limit_data", bytes=1000),
         "5 of 5 canary connections had their answer cut short (asked 1000 bytes"),
        (step("proxy.limit_data", bytes=1000, stream="upstream"), "had their answer cut short"),
        (step("proxy.bandwidth", rate=100),
         "5 of 5 canary connections took >= 500 ms for 100 KB"),
        (step("proxy.slow_close", delay=1000),
         "5 of 5 canary connections closed >= 800 ms after the last byte"),
        (step("proxy.slow_close", delay=1000, stream="upstream"), "closed >= 800 ms after"),
        (step("proxy.slicer", average_size=100, size_variation=10),
         "5 of 5 canary connections got the answer in >= 3 pieces"),
    ]


def case_id(fault: Step) -> str:
    """`proxy.latency-upstream`: a case's test id."""
    return f"{fault.fault}-{fault.params.get('stream', 'downstream')}"
