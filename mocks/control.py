"""The mocks' control API: the faults a vendor mock, a channel mock (mail, push) or the ledger
can be switched to."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from aiohttp import StreamReader, web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from mocks.guard import within_deadline
from mocks.paths import CANARY_PATH

MAX_SECONDS = 300.0
"""The longest delay a fault may hold an answer, a report or the replica (finite: a switch must
never hold a handler past the run)."""

MAX_NUMBERS = 10_000
"""The most phone numbers a number fault may list."""

Number = Annotated[str, StringConstraints(max_length=32)]


def _compiles(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_compiles)]
"""A regular expression, refused with the reason when it does not compile."""

Rule = Literal["template", "signature"]
"""What a rule change has a vendor refuse (the `rejects` fault): the template or the sender
signature is no longer approved."""


class VendorFaults(BaseModel):
    """Application-level faults of one vendor, switched by the control API; all off at first."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    outage: int | None = Field(default=None, ge=400, le=599,
                               description="answer every send with this HTTP status, vendor-style")
    throttle: bool = Field(default=False, description="answer every send with the vendor's "
                           "rate-limit error")
    latency: float = Field(default=0.0, ge=0, le=MAX_SECONDS,
                           description="seconds before answering")
    drop: float = Field(default=0.0, ge=0, le=1,
                        description="fraction of accepted sends never delivered")
    response_lost: float = Field(default=0.0, ge=0, le=1, description="fraction of sends "
                                 "recorded, then the connection closed with no answer")
    invalid_numbers: frozenset[Number] = Field(default=frozenset(), max_length=MAX_NUMBERS)
    barred_numbers: frozenset[Number] = Field(default=frozenset(), max_length=MAX_NUMBERS)
    partial: float = Field(default=0.0, ge=0, le=1, description="fraction of the recipients of "
                           "a multi-recipient send that fail")
    dlr_delay: float = Field(default=0.0, ge=0, le=MAX_SECONDS,
                             description="seconds before each report")
    dlr_loss: float = Field(default=0.0, ge=0, le=1)
    dlr_duplicate: float = Field(default=0.0, ge=0, le=1)
    dlr_reorder: bool = False
    rejects: Rule | None = Field(
        default=None, description="every send is refused, in the vendor's own words, because "
        "its template or its sender signature is no longer approved (a rule change)")
    content_filter: Regex | None = Field(default=None, max_length=200, description="a regular "
                                       "expression: the carrier's content rule acts on every "
                                       "accepted message whose text it finds")
    content_action: Literal["drop", "spam"] = Field(
        default="drop", description="drop: the message silently never arrives; spam: it is "
        "diverted to the spam folder")


class MailFaults(BaseModel):
    """Faults of the mail server mock (SMTP), switched by its control API; all off at first."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    greylist: float = Field(default=0.0, ge=0, le=MAX_SECONDS, description="greylisting: "
                            "a message's first attempt is refused with 451, and so is every "
                            "retry sooner than this many seconds after it (0: off)")
    reject: int | None = Field(default=None, ge=500, le=599, description="every message is "
                               "refused with this 5xx reply")
    data_delay: float = Field(default=0.0, ge=0, le=MAX_SECONDS, description="seconds before "
                              "the reply to the end of DATA")
    drop_after_data: float = Field(default=0.0, ge=0, le=1, description="fraction of messages "
                                   "recorded, then the connection closed with no reply")


class PushFaults(BaseModel):
    """Faults of the push service mock (FCM HTTP v1), switched by its control API."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    unavailable: bool = Field(default=False, description="every send gets 503 UNAVAILABLE")
    quota: bool = Field(default=False, description="every send gets 429 QUOTA_EXCEEDED")
    latency: float = Field(default=0.0, ge=0, le=MAX_SECONDS,
                           description="seconds before answering")


class LedgerFaults(BaseModel):
    """Data-sync faults of the ledger's replica (what the change feed serves); the truth and the
    primary record stay true.

    They apply to feed entries appended while they are in force; `schema_change` is a change of
    the wire format, so it applies to every page and primary record served while it is.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    lag: float = Field(default=0.0, ge=0, le=MAX_SECONDS,
                       description="seconds the replica is behind the truth")
    drop: float = Field(default=0.0, ge=0, le=1, description="fraction of feed entries never "
                        "replicated")
    drift: float = Field(default=0.0, ge=0, le=1, description="fraction of feed entries "
                         "replicated with a changed field")
    drift_field: Literal["phone", "amount", "due_date"] = "phone"
    duplicate: float = Field(default=0.0, ge=0, le=1, description="fraction of feed entries "
                             "replicated twice")
    schema_change: Literal["renamed_field", "date_format"] | None = Field(
        default=None, description="renamed_field: due_date becomes dueDate; date_format: "
        "due dates as DD/MM/YYYY")
    snapshot_age: float = Field(default=0.0, ge=0, le=MAX_SECONDS,
                                description="the replica was restored from a snapshot this many "
                                "seconds old: changes made since are forgotten (0: no snapshot)")
    test_leak: float = Field(default=0.0, ge=0, le=1, description="fraction of feed entries "
                             "joined (records: borrowers) or changed (records: amounts) by "
                             "records from the test environment")
    test_leak_records: Literal["borrowers", "amounts"] = Field(
        default="borrowers", description="borrowers: test borrowers with test phone numbers "
        "appear; amounts: production borrowers carry test amounts")


M = TypeVar("M", bound=BaseModel)

CANARY_MAX_BYTES = 16 * 1024 * 1024


async def _drain(content: StreamReader) -> None:
    async for _ in content.iter_any():
        pass


def fault_routes(model: type[M], current: Callable[[], M],
                 switch: Callable[[M], None]) -> list[web.RouteDef]:
    """`/__notifychaos/faults`: GET the faults in force, PUT new ones, DELETE to clear; and
    the canary the harness probes network faults with (`CANARY_PATH`, GET or POST, `?bytes=N`:
    reads whatever body is sent, answers N bytes)."""

    async def canary(request: web.Request) -> web.Response:
        # Streamed, not read() (the guard leaves it to the canary): an upstream fault's probe
        # may send more than client_max_size. Junk it raises is answered by the guard.
        await within_deadline(request, _drain(request.content))
        size = request.query.get("bytes", "16")
        if not (size.isascii() and size.isdigit() and len(size) <= 9) or int(
                size) > CANARY_MAX_BYTES:
            return web.json_response({"error": f"bytes must be 0 to {CANARY_MAX_BYTES}"},
                                     status=400)
        return web.Response(body=b"." * int(size), content_type="application/octet-stream")

    async def show(_: web.Request) -> web.Response:
        return web.json_response(current().model_dump(mode="json"))

    async def put(request: web.Request) -> web.Response:
        try:
            faults = model.model_validate_json(await request.read())
        except ValidationError as exc:
            return web.json_response({"error": str(exc).splitlines()[:3]}, status=400)
        switch(faults)
        return web.json_response(faults.model_dump(mode="json"))

    async def clear(_: web.Request) -> web.Response:
        switch(model())
        return web.json_response(current().model_dump(mode="json"))

    return [web.get("/__notifychaos/faults", show), web.put("/__notifychaos/faults", put),
            web.delete("/__notifychaos/faults", clear),
            web.get(CANARY_PATH, canary), web.post(CANARY_PATH, canary)]
