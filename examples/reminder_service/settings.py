"""Service configuration read from environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .bank_calendar import WALL, Calendar
from .schema import SCHEMAS


class ConfigError(ValueError):
    """A missing or malformed environment variable."""


class Mode(StrEnum):
    RESILIENT = "resilient"
    NAIVE = "naive"


class Defect(StrEnum):
    """One deliberate defect each, to prove the harness catches it (README: "Defect variants").

    Each lives in one guarded branch: grep for its member name.
    """

    NO_FAILOVER = "no-failover"
    BLIND_RESEND = "blind-resend"
    CACHED_PHONES = "cached-phones"
    IGNORES_REPAYMENTS = "ignores-repayments"
    IGNORES_OPT_OUTS = "ignores-opt-outs"
    WRONG_TIMEZONE = "wrong-timezone"
    WALL_CALENDAR = "wall-calendar"
    WRONG_AMOUNT_FORMAT = "wrong-amount-format"
    NEVER_ALERTS = "never-alerts"
    SLOW_DRAIN = "slow-drain"
    LEAKS_PII = "leaks-pii"


SMS = "sms"
FALLBACKS = ("push", "email")
"""The channels beside SMS, in the order the resilient notifier falls back to them."""


@dataclass(frozen=True)
class TwilioConfig:
    name: str
    base_url: str
    account_sid: str
    auth_token: str
    from_number: str


@dataclass(frozen=True)
class AliyunConfig:
    name: str
    base_url: str
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str


VendorConfig = TwilioConfig | AliyunConfig


@dataclass(frozen=True)
class PushConfig:
    """FCM HTTP v1: the base URL (`{url}/v1/projects/{project}/messages:send`), the Firebase
    project and the service account's JSON key file."""

    url: str
    project: str
    credentials_file: str


@dataclass(frozen=True)
class MailConfig:
    host: str
    port: int
    username: str
    password: str
    sender: str
    timeout: float
    """Seconds per socket operation, the reply to the message's data included."""


@dataclass(frozen=True)
class HaConfig:
    """Active/standby: this instance's name, and the lease's time to live and renewal period
    (seconds)."""

    instance: str
    lease_ttl: float
    lease_renew: float


@dataclass(frozen=True)
class Settings:
    port: int
    ledger_url: str
    alert_url: str
    outbox_path: str
    public_url: str
    version: int
    ha: HaConfig | None
    primary: VendorConfig
    secondary: VendorConfig | None
    mode: Mode
    vendor_timeout: float
    primary_timeout: float
    poll_interval: float
    workers: int
    reconcile: bool
    defect: Defect | None
    push: PushConfig | None
    """Set when CHANNELS lists push."""
    mail: MailConfig | None
    """Set when CHANNELS lists email."""
    app_link: str
    calendar: Calendar
    """What staged reminders are scheduled by: the compressed month when told one."""

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """The channels after SMS, in order, that this notifier falls back to: those CHANNELS
        lists, in the resilient mode (the naive notifier keeps to SMS)."""
        if self.mode is Mode.NAIVE:
            return ()
        configured = {"push": self.push, "email": self.mail}
        return tuple(channel for channel in FALLBACKS if configured[channel] is not None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        env = _Env(environ)
        port = env.integer("PORT")
        if port > 65535:
            raise ConfigError(f"PORT must be 0..65535, got {port}")
        defect = _defect(env.optional("DEFECT"))
        mode = _mode(env.optional("NOTIFIER_MODE") or Mode.RESILIENT.value)
        reconcile = _switch(env, "RECONCILE", default=True)
        if defect is Defect.NO_FAILOVER:
            mode = Mode.NAIVE  # the defect: one attempt through the primary, nothing more
        if defect is Defect.BLIND_RESEND:
            reconcile = False  # the defect: an unanswered send is sent again unasked
        channels = _channels(env.optional("CHANNELS"))
        settings = cls(
            port=port,
            ledger_url=env.url("LEDGER_URL"),
            alert_url=env.required("ALERT_URL"),
            outbox_path=env.required("OUTBOX_PATH"),
            public_url=env.url("PUBLIC_URL"),
            version=_version(env.optional("NOTIFIER_VERSION")),
            ha=_ha(env),
            primary=_vendor(env, env.required("PRIMARY_VENDOR")),
            secondary=_secondary(env),
            mode=mode,
            vendor_timeout=env.positive("VENDOR_TIMEOUT", 2.0),
            primary_timeout=env.positive("PRIMARY_TIMEOUT", 1.0),
            poll_interval=env.positive("POLL_INTERVAL", 0.5),
            workers=env.integer("WORKERS", 4, minimum=1),
            reconcile=reconcile,
            defect=defect,
            push=_push(env) if "push" in channels else None,
            mail=_mail(env) if "email" in channels else None,
            app_link=env.optional("APP_LINK"),
            # The defect: the bank's stages read on the wall clock, whatever calendar the
            # notifier was told (days late on a compressed month, or never).
            calendar=WALL if defect is Defect.WALL_CALENDAR else _calendar(env),
        )
        for vendor in (settings.primary, settings.secondary):
            if vendor is not None and vendor.name in (SMS, *FALLBACKS):
                # The outbox names the channel that delivered where it names the vendor.
                raise ConfigError(f"a vendor may not be called {vendor.name!r}: it is a channel")
        if settings.secondary is not None and settings.secondary.name == settings.primary.name:
            raise ConfigError("SECONDARY_VENDOR must differ from PRIMARY_VENDOR")
        return settings


class _Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, key: str) -> str:
        return self._environ.get(key, "").strip()

    def required(self, key: str) -> str:
        value = self.optional(key)
        if not value:
            raise ConfigError(f"missing required environment variable {key}")
        return value

    def url(self, key: str) -> str:
        return self.required(key).rstrip("/")

    def integer(self, key: str, default: int | None = None, minimum: int = 0) -> int:
        raw = self.optional(key)
        if not raw:
            if default is None:
                raise ConfigError(f"missing required environment variable {key}")
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{key} must be at least {minimum}, got {value}")
        return value

    def positive(self, key: str, default: float) -> float:
        raw = self.optional(key)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number of seconds, got {raw!r}") from None
        if not value > 0:
            raise ConfigError(f"{key} must be positive, got {raw!r}")
        return value


def env_prefix(vendor_name: str) -> str:
    """`aliyun-backup` -> `ALIYUN_BACKUP`: env names cannot hold dashes or dots."""
    return re.sub(r"[^A-Z0-9]", "_", vendor_name.upper())


def _secondary(env: _Env) -> VendorConfig | None:
    name = env.optional("SECONDARY_VENDOR")
    return _vendor(env, name) if name else None


def _switch(env: _Env, key: str, *, default: bool) -> bool:
    value = env.optional(key).lower()
    if value in ("on", "true", "1"):
        return True
    if value in ("off", "false", "0"):
        return False
    if not value:
        return default
    raise ConfigError(f"{key} must be on or off, got {value!r}")


def _version(value: str) -> int:
    known = sorted(SCHEMAS)
    if not value:
        return known[0]
    if value not in {str(version) for version in known}:
        listed = " or ".join(str(version) for version in known)
        raise ConfigError(f"NOTIFIER_VERSION must be {listed}, got {value!r}")
    return int(value)


def _ha(env: _Env) -> HaConfig | None:
    mode = env.optional("HA_MODE") or "off"
    if mode == "off":
        return None
    if mode != "active-standby":
        raise ConfigError(f"HA_MODE must be 'off' or 'active-standby', got {mode!r}")
    ttl = env.positive("LEASE_TTL", 3.0)
    renew = env.positive("LEASE_RENEW", 1.0)
    if not renew * 2 <= ttl:
        raise ConfigError(
            f"LEASE_RENEW must be at most half of LEASE_TTL ({ttl:g}s), got {renew:g}s"
        )
    return HaConfig(instance=env.required("INSTANCE_NAME"), lease_ttl=ttl, lease_renew=renew)


def _channels(value: str) -> set[str]:
    if not value:
        return {SMS}
    listed = [channel.strip() for channel in value.split(",")]
    known = (SMS, *FALLBACKS)
    unknown = [channel for channel in listed if channel not in known]
    if unknown or SMS not in listed:
        raise ConfigError(
            f"CHANNELS must be a comma list of {', '.join(known)} with sms, got {value!r}"
        )
    return set(listed)


def _push(env: _Env) -> PushConfig:
    return PushConfig(
        url=env.url("PUSH_URL"),
        project=env.required("PUSH_PROJECT"),
        credentials_file=env.required("PUSH_CREDENTIALS_FILE"),
    )


def _mail(env: _Env) -> MailConfig:
    host = env.required("SMTP_HOST")
    port = env.integer("SMTP_PORT", minimum=1)
    if port > 65535:
        raise ConfigError(f"SMTP_PORT must be 1..65535, got {port}")
    return MailConfig(
        host=host,
        port=port,
        username=env.required("SMTP_USERNAME"),
        password=env.required("SMTP_PASSWORD"),
        sender=env.required("MAIL_FROM"),
        # RFC 5321 has a client wait minutes for the reply to the data; 10 s keeps a slow
        # server's answer (a lost one counts as sent) inside an e-mail window.
        timeout=env.positive("SMTP_TIMEOUT", 10.0),
    )


def _calendar(env: _Env) -> Calendar:
    """The compressed month's clock of NOTIFYCHAOS_CLOCK_EPOCH, _SPEED and _START (all three
    or none); the wall clock without them."""
    keys = ("NOTIFYCHAOS_CLOCK_EPOCH", "NOTIFYCHAOS_CLOCK_SPEED", "NOTIFYCHAOS_CLOCK_START")
    if not any(env.optional(key) for key in keys):
        return WALL
    epoch, speed, start = (env.required(key) for key in keys)
    try:
        begins = datetime.fromisoformat(start)
        calendar = Calendar(epoch=float(epoch), speed=float(speed), start=begins)
    except ValueError:
        raise ConfigError(f"NOTIFYCHAOS_CLOCK_*: expected Unix seconds, a speed and an ISO 8601 "
                          f"time, got {epoch!r}, {speed!r}, {start!r}") from None
    if begins.tzinfo is None or not calendar.speed > 0:
        raise ConfigError(f"NOTIFYCHAOS_CLOCK_START needs its offset and _SPEED must be "
                          f"positive, got {start!r}, {speed!r}")
    return calendar


def _mode(value: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise ConfigError(f"NOTIFIER_MODE must be 'resilient' or 'naive', got {value!r}") from None


def _defect(value: str) -> Defect | None:
    if not value:
        return None
    try:
        return Defect(value)
    except ValueError:
        known = ", ".join(defect.value for defect in Defect)
        raise ConfigError(f"DEFECT must be one of {known}, got {value!r}") from None


def _vendor(env: _Env, name: str) -> VendorConfig:
    prefix = env_prefix(name)
    kind = env.optional(f"{prefix}_KIND") or name
    base_url = env.url(f"{prefix}_BASE_URL")
    if kind == "twilio":
        return TwilioConfig(
            name=name,
            base_url=base_url,
            account_sid=env.required(f"{prefix}_ACCOUNT_SID"),
            auth_token=env.required(f"{prefix}_AUTH_TOKEN"),
            from_number=env.required(f"{prefix}_FROM"),
        )
    if kind == "aliyun":
        return AliyunConfig(
            name=name,
            base_url=base_url,
            access_key_id=env.required(f"{prefix}_ACCESS_KEY_ID"),
            access_key_secret=env.required(f"{prefix}_ACCESS_KEY_SECRET"),
            sign_name=env.required(f"{prefix}_SIGN_NAME"),
            template_code=env.required(f"{prefix}_TEMPLATE_CODE"),
        )
    raise ConfigError(f"{prefix}_KIND must be 'twilio' or 'aliyun', got {kind!r}")
