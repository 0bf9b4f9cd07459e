"""Settings: one frozen object built from the environment, checked at start-up.

A wrong value stops the process with one line naming the variable, so a typo in a
deployment fails loudly instead of isolating tenants with the wrong knobs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")

MIN_TOKEN_LENGTH = 16
DEFAULT_TIER_HOURLY_COST = {
    "platinum": 150_000.0,
    "gold": 60_000.0,
    "silver": 25_000.0,
    "bronze": 5_000.0,
}


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 1
    open_timeout_s: float = 60.0
    max_open_timeout_s: float = 900.0
    half_open_probe_percent: float = 10.0
    half_open_probation_s: float = 60.0
    transition_log_cap: int = 100


@dataclass(frozen=True)
class IncidentSettings:
    correlation_window_s: float = 300.0
    quiet_period_s: float = 0.0
    alert_timeout_s: float = 24 * 3600.0
    retention_s: float = 90 * 86400.0


DEFAULT_ROUTES = {
    "P0": ("pagerduty", "slack", "email"),
    "P1": ("pagerduty", "slack"),
    "P2": ("slack", "email"),
}
CHANNELS = ("pagerduty", "slack", "email")


@dataclass(frozen=True)
class NotifySettings:
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ROUTES))
    pagerduty_routing_keys: Mapping[str, str] = field(default_factory=dict)
    """`default` and optionally one per tier."""
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    slack_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    email_from: str = "blast-radius@localhost"
    email_to: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """`default` and optionally one list per tier."""
    escalation_chain: tuple[str, ...] = ("on-call", "platform lead", "CTO")
    public_url: str = "http://127.0.0.1:8080"
    timeout_s: float = 10.0
    max_attempts: int = 8
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0
    slack_per_s: float = 1.0
    pagerduty_per_s: float = 2.0
    update_interval_s: float = 60.0
    """At most one tenant-level update (joined, isolated, restored, held back) per
    incident this often; opened, priority, escalation and resolution go at once."""

    def configured(self, channel: str) -> bool:
        if channel == "pagerduty":
            return bool(self.pagerduty_routing_keys)
        if channel == "slack":
            return bool(self.slack_webhook_url)
        return bool(self.smtp_host and self.email_to)


class Enforcement(StrEnum):
    ENFORCE = "enforce"
    SHADOW = "shadow"
    """Breakers, incidents and notifications as usual, but every admission answer
    allows; the would-be answer rides along."""


@dataclass(frozen=True)
class GateSettings:
    """The forward-auth check a gateway makes (`/gate`)."""

    tenant_header: str = "X-Tenant-ID"
    tenant_pattern: re.Pattern[str] | None = None
    """Over the original URI, when the header is absent: the `tenant` group, else the first."""
    deny_status: int = 429
    no_tenant_allow: bool = True
    fail_open: bool = True


@dataclass(frozen=True)
class Settings:
    webhook_token: str
    api_token: str
    admin_token: str
    redis_url: str | None = None
    tenants_file: str | None = None
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    incidents: IncidentSettings = field(default_factory=IncidentSettings)
    max_isolated_percent: float = 20.0
    shared_settle_s: float = 60.0
    """After a shared cause ends, how long its victims' trips stay held back."""
    shared_release_window_s: float = 60.0
    """Tenants isolated up to this long before a shared cause started are released."""
    notify: NotifySettings = field(default_factory=NotifySettings)
    max_body_bytes: int = 10 * 1024 * 1024
    max_alert_age_s: float = 30 * 86400.0
    """An alert that started longer ago than this is rejected (a broken clock, a forgery)."""
    max_alert_future_s: float = 600.0
    """An alert stamped further ahead of the receiver's clock than this is rejected."""
    metrics_token: str | None = None
    """Bearer token `GET /metrics` asks for; unset, it is open like most exporters."""
    max_label_bytes: int = 4096
    max_annotation_bytes: int = 16384
    session_secret: str | None = None
    """Signs the console's session cookie; unset, a key is derived from the admin token."""
    session_max_age_s: float = 8 * 3600.0
    tls: bool = False
    """Browsers reach us over HTTPS (`RECEIVER_TLS_CERT`, or an https
    `RECEIVER_PUBLIC_URL` behind a TLS proxy): the session cookie is `Secure`."""

    idempotency_ttl_s: float = 24 * 3600.0
    sweep_interval_s: float = 5.0
    watchdog_max_age_s: float = 300.0
    alertmanager_url: str | None = None
    reconcile_interval_s: float = 60.0
    redis_timeout_s: float = 2.0
    tier_hourly_cost: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_TIER_HOURLY_COST)
    )
    gate: GateSettings = field(default_factory=GateSettings)
    enforcement: Enforcement = Enforcement.ENFORCE


def _parse(env: Mapping[str, str], name: str, cast: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return cast(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: invalid value {raw!r} ({exc})") from None


def _positive(cast: Callable[[str], T]) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = cast(raw)
        if value <= 0:  # type: ignore[operator]
            raise ValueError("must be greater than 0")
        return value

    return parse


def _non_negative(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _percent(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 100:
        raise ValueError("must be between 0 and 100")
    return value


def _costs(raw: str) -> dict[str, float]:
    costs = dict(DEFAULT_TIER_HOURLY_COST)
    for part in raw.split(","):
        tier, sep, amount = part.partition("=")
        tier = tier.strip().lower()
        if not sep or tier not in costs:
            raise ValueError(f"expected tier=amount with tier in {sorted(costs)}")
        costs[tier] = float(amount)
        if costs[tier] < 0:
            raise ValueError("cost must not be negative")
    return costs


def _routes(raw: str) -> dict[str, tuple[str, ...]]:
    routes = dict(DEFAULT_ROUTES)
    for part in raw.split(";"):
        priority, sep, channels = part.partition("=")
        priority = priority.strip().upper()
        names = tuple(c.strip().lower() for c in channels.split(",") if c.strip())
        if not sep or priority not in routes or any(c not in CHANNELS for c in names):
            raise ValueError(f"expected P0=pagerduty,slack;P2=email with channels in {CHANNELS}")
        routes[priority] = names
    return routes


def _addresses(raw: str) -> tuple[str, ...]:
    found = tuple(a.strip() for a in raw.split(",") if a.strip())
    if any("@" not in a for a in found):
        raise ValueError("expected comma-separated e-mail addresses")
    return found


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _deny_status(raw: str) -> int:
    value = int(raw)
    if not 400 <= value <= 499:
        raise ValueError("must be a 4xx status (nginx: 403): a deny is never a 5xx")
    return value


def _pattern(raw: str) -> re.Pattern[str]:
    try:
        pattern = re.compile(raw)
    except re.error as exc:
        raise ValueError(str(exc)) from None
    if pattern.groups < 1:
        raise ValueError("needs a group around the tenant id, e.g. ^/t/(?P<tenant>[^/]+)/")
    return pattern


def _no_tenant(raw: str) -> bool:
    if raw.lower() not in ("allow", "deny"):
        raise ValueError("expected allow or deny")
    return raw.lower() == "allow"


def load_gate(env: Mapping[str, str]) -> GateSettings:
    return GateSettings(
        tenant_header=(env.get("GATE_TENANT_HEADER") or "X-Tenant-ID").strip(),
        tenant_pattern=_parse(env, "GATE_TENANT_PATTERN", _pattern, None),
        deny_status=_parse(env, "GATE_DENY_STATUS", _deny_status, 429),
        no_tenant_allow=_parse(env, "GATE_NO_TENANT", _no_tenant, True),
        fail_open=_parse(env, "GATE_FAIL_OPEN", _flag, True),
    )


def _tiered(env: Mapping[str, str], name: str, cast: Callable[[str], T]) -> dict[str, T]:
    """`NAME` as `default`, `NAME_<TIER>` per tier."""
    values: dict[str, T] = {}
    for suffix in ("", "_PLATINUM", "_GOLD", "_SILVER", "_BRONZE"):
        key = suffix[1:].lower() or "default"
        value = _parse(env, f"{name}{suffix}", cast, None)
        if value is not None:
            values[key] = value
    return values


def load_notify(env: Mapping[str, str]) -> NotifySettings:
    return NotifySettings(
        routes=_parse(env, "NOTIFY_ROUTES", _routes, dict(DEFAULT_ROUTES)),
        pagerduty_routing_keys=_tiered(env, "PAGERDUTY_ROUTING_KEY", str),
        pagerduty_events_url=env.get("PAGERDUTY_EVENTS_URL")
        or "https://events.pagerduty.com/v2/enqueue",
        slack_webhook_url=env.get("SLACK_WEBHOOK_URL") or None,
        smtp_host=env.get("SMTP_HOST") or None,
        smtp_port=_parse(env, "SMTP_PORT", _positive(int), 25),
        smtp_user=env.get("SMTP_USER") or None,
        smtp_password=env.get("SMTP_PASSWORD") or None,
        smtp_starttls=_parse(env, "SMTP_STARTTLS", _flag, False),
        email_from=env.get("EMAIL_FROM") or "blast-radius@localhost",
        email_to=_tiered(env, "EMAIL_TO", _addresses),
        escalation_chain=_parse(
            env,
            "ESCALATION_CHAIN",
            lambda raw: tuple(p.strip() for p in raw.split(",") if p.strip()),
            ("on-call", "platform lead", "CTO"),
        ),
        public_url=(env.get("RECEIVER_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/"),
        timeout_s=_parse(env, "NOTIFY_TIMEOUT_S", _positive(float), 10.0),
        max_attempts=_parse(env, "NOTIFY_MAX_ATTEMPTS", _positive(int), 8),
        backoff_base_s=_parse(env, "NOTIFY_BACKOFF_BASE_S", _positive(float), 2.0),
        backoff_cap_s=_parse(env, "NOTIFY_BACKOFF_CAP_S", _positive(float), 300.0),
        update_interval_s=_parse(env, "NOTIFY_UPDATE_INTERVAL_S", _non_negative, 60.0),
    )


def _token(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(
            f"{name} is required (a random secret of at least {MIN_TOKEN_LENGTH} characters)"
        )
    if len(value) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{name} must be at least {MIN_TOKEN_LENGTH} characters long")
    return value


REDIS_SCHEMES = ("redis:", "rediss:", "unix:")


def _optional_token(env: Mapping[str, str], name: str) -> str | None:
    if not (env.get(name) or "").strip():
        return None
    return _token(env, name)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    breaker = BreakerSettings(
        failure_threshold=_parse(env, "BREAKER_FAILURE_THRESHOLD", _positive(int), 1),
        open_timeout_s=_parse(env, "BREAKER_OPEN_TIMEOUT_S", _positive(float), 60.0),
        max_open_timeout_s=_parse(env, "BREAKER_MAX_OPEN_TIMEOUT_S", _positive(float), 900.0),
        half_open_probe_percent=_parse(env, "BREAKER_HALF_OPEN_PROBE_PERCENT", _percent, 10.0),
        half_open_probation_s=_parse(env, "BREAKER_HALF_OPEN_PROBATION_S", _positive(float), 60.0),
        transition_log_cap=_parse(env, "BREAKER_TRANSITION_LOG_CAP", _positive(int), 100),
    )
    if breaker.max_open_timeout_s < breaker.open_timeout_s:
        raise ConfigError("BREAKER_MAX_OPEN_TIMEOUT_S must not be less than BREAKER_OPEN_TIMEOUT_S")
    incidents = IncidentSettings(
        correlation_window_s=_parse(env, "INCIDENT_CORRELATION_WINDOW_S", _positive(float), 300.0),
        quiet_period_s=_parse(env, "INCIDENT_QUIET_PERIOD_S", _non_negative, 0.0),
        alert_timeout_s=_parse(env, "INCIDENT_ALERT_TIMEOUT_S", _positive(float), 86400.0),
        retention_s=_parse(env, "INCIDENT_RETENTION_S", _positive(float), 90 * 86400.0),
    )
    values: dict[str, Any] = {
        "webhook_token": _token(env, "RECEIVER_WEBHOOK_TOKEN"),
        "api_token": _token(env, "RECEIVER_API_TOKEN"),
        "admin_token": _token(env, "RECEIVER_ADMIN_TOKEN"),
        "redis_url": env.get("REDIS_URL") or None,
        "tenants_file": env.get("TENANTS_FILE") or None,
        "breaker": breaker,
        "incidents": incidents,
        "max_isolated_percent": _parse(env, "GUARD_MAX_ISOLATED_PERCENT", _percent, 20.0),
        "shared_settle_s": _parse(env, "GUARD_SHARED_SETTLE_S", _non_negative, 60.0),
        "shared_release_window_s": _parse(
            env, "GUARD_SHARED_RELEASE_WINDOW_S", _non_negative, 60.0
        ),
        "notify": load_notify(env),
        "max_body_bytes": _parse(env, "RECEIVER_MAX_BODY_BYTES", _positive(int), 10 * 1024 * 1024),
        "metrics_token": _optional_token(env, "METRICS_TOKEN"),
        "max_alert_age_s": _parse(env, "RECEIVER_MAX_ALERT_AGE_S", _positive(float), 2592000.0),
        "max_alert_future_s": _parse(env, "RECEIVER_MAX_ALERT_FUTURE_S", _positive(float), 600.0),
        "max_label_bytes": _parse(env, "RECEIVER_MAX_LABEL_BYTES", _positive(int), 4096),
        "max_annotation_bytes": _parse(env, "RECEIVER_MAX_ANNOTATION_BYTES", _positive(int), 16384),
        "idempotency_ttl_s": _parse(env, "RECEIVER_IDEMPOTENCY_TTL_S", _positive(float), 86400.0),
        "sweep_interval_s": _parse(env, "RECEIVER_SWEEP_INTERVAL_S", _positive(float), 5.0),
        "watchdog_max_age_s": _parse(env, "RECEIVER_WATCHDOG_MAX_AGE_S", _positive(float), 300.0),
        "alertmanager_url": (env.get("ALERTMANAGER_URL") or "").rstrip("/") or None,
        "reconcile_interval_s": _parse(env, "RECONCILE_INTERVAL_S", _positive(float), 60.0),
        "redis_timeout_s": _parse(env, "REDIS_TIMEOUT_S", _positive(float), 2.0),
        "tier_hourly_cost": _parse(env, "TIER_HOURLY_COST", _costs, dict(DEFAULT_TIER_HOURLY_COST)),
        "session_secret": _optional_token(env, "RECEIVER_SESSION_SECRET"),
        "session_max_age_s": _parse(env, "RECEIVER_SESSION_MAX_AGE_S", _positive(float), 28800.0),
        "tls": bool(env.get("RECEIVER_TLS_CERT"))
        or (env.get("RECEIVER_PUBLIC_URL") or "").startswith("https://"),
        "gate": load_gate(env),
        "enforcement": _parse(
            env, "ENFORCEMENT", lambda raw: Enforcement(raw.lower()), Enforcement.ENFORCE
        ),
    }
    redis_url = values["redis_url"]
    if redis_url and not redis_url.startswith(REDIS_SCHEMES):
        schemes = ", ".join(f"{scheme}//" for scheme in REDIS_SCHEMES)
        raise ConfigError(f"REDIS_URL: expected one of {schemes}, got {redis_url.split(':')[0]!r}")
    if values["tenants_file"] and not os.path.isfile(values["tenants_file"]):
        raise ConfigError(f"TENANTS_FILE: no such file {values['tenants_file']!r}")
    values.update(overrides)
    return Settings(**values)
