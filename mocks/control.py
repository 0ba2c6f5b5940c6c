"""The mocks' control API: the application-level faults a vendor mock can be switched to."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VendorFaults(BaseModel):
    """Application-level faults of one vendor, switched by the control API; all off at first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outage: int | None = Field(default=None, ge=400, le=599,
                               description="answer every send with this HTTP status, vendor-style")
    throttle: bool = Field(default=False, description="answer every send with the vendor's "
                           "rate-limit error")
    latency: float = Field(default=0.0, ge=0, description="seconds before answering")
    drop: float = Field(default=0.0, ge=0, le=1,
                        description="fraction of accepted sends never delivered")
    response_lost: float = Field(default=0.0, ge=0, le=1, description="fraction of sends "
                                 "recorded, then the connection closed with no answer")
    invalid_numbers: frozenset[str] = frozenset()
    barred_numbers: frozenset[str] = frozenset()
    partial: float = Field(default=0.0, ge=0, le=1, description="fraction of the recipients of "
                           "a multi-recipient send that fail")
    dlr_delay: float = Field(default=0.0, ge=0, description="seconds before each report")
    dlr_loss: float = Field(default=0.0, ge=0, le=1)
    dlr_duplicate: float = Field(default=0.0, ge=0, le=1)
    dlr_reorder: bool = False
