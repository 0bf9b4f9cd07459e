"""Settings: one frozen object built from the environment, checked at start-up.

A wrong value stops the process with one line naming the variable, so a typo in a
deployment fails loudly instead of isolating tenants with the wrong knobs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from receiver.env import (
    MIN_TOKEN_LENGTH,
    ConfigError,
    flag,
    non_negative,
    optional_token,
    parse,
    percent,
    positive,
    tiered,
    token,
)
from receiver.redis_url import Kind, RedisTarget, parse_redis_url

__all__ = ["MIN_TOKEN_LENGTH", "ConfigError", "Settings", "load_settings"]
DEFAULT_TIER_HOURLY_COST = {
    "platinum": 150_000.0,
    "gold": 60_000.0,
    "silver": 25_000.0,
    "bronze": 5_000.0,
}


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
    redis_retry_budget_s: float | None = None
    """How long a command keeps retrying a server that went away (a failover) before
    the caller answers 503; unset, 0.1 s on one server, 2 s on Sentinel or a cluster."""
    redis_min_replicas: int = 0
    """A delivery answers 2xx only once its writes reached this many replicas."""
    notify_redis_url: str | None = None
    """Where the notification queue lives; unset, `redis_url` (not a cluster)."""
    tier_hourly_cost: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_TIER_HOURLY_COST)
    )
    gate: GateSettings = field(default_factory=GateSettings)
    enforcement: Enforcement = Enforcement.ENFORCE


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
        tenant_pattern=parse(env, "GATE_TENANT_PATTERN", _pattern, None),
        deny_status=parse(env, "GATE_DENY_STATUS", _deny_status, 429),
        no_tenant_allow=parse(env, "GATE_NO_TENANT", _no_tenant, True),
        fail_open=parse(env, "GATE_FAIL_OPEN", flag, True),
    )


def load_notify(env: Mapping[str, str]) -> NotifySettings:
    return NotifySettings(
        routes=parse(env, "NOTIFY_ROUTES", _routes, dict(DEFAULT_ROUTES)),
        pagerduty_routing_keys=tiered(env, "PAGERDUTY_ROUTING_KEY", str),
        pagerduty_events_url=env.get("PAGERDUTY_EVENTS_URL")
        or "https://events.pagerduty.com/v2/enqueue",
        slack_webhook_url=env.get("SLACK_WEBHOOK_URL") or None,
        smtp_host=env.get("SMTP_HOST") or None,
        smtp_port=parse(env, "SMTP_PORT", positive(int), 25),
        smtp_user=env.get("SMTP_USER") or None,
        smtp_password=env.get("SMTP_PASSWORD") or None,
        smtp_starttls=parse(env, "SMTP_STARTTLS", flag, False),
        email_from=env.get("EMAIL_FROM") or "blast-radius@localhost",
        email_to=tiered(env, "EMAIL_TO", _addresses),
        escalation_chain=parse(
            env,
            "ESCALATION_CHAIN",
            lambda raw: tuple(p.strip() for p in raw.split(",") if p.strip()),
            ("on-call", "platform lead", "CTO"),
        ),
        public_url=(env.get("RECEIVER_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/"),
        timeout_s=parse(env, "NOTIFY_TIMEOUT_S", positive(float), 10.0),
        max_attempts=parse(env, "NOTIFY_MAX_ATTEMPTS", positive(int), 8),
        backoff_base_s=parse(env, "NOTIFY_BACKOFF_BASE_S", positive(float), 2.0),
        backoff_cap_s=parse(env, "NOTIFY_BACKOFF_CAP_S", positive(float), 300.0),
        update_interval_s=parse(env, "NOTIFY_UPDATE_INTERVAL_S", non_negative, 60.0),
    )


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _target(name: str, url: str) -> RedisTarget:
    try:
        return parse_redis_url(url)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _check_redis(url: str | None, notify_url: str | None, min_replicas: int) -> None:
    """Refuse the combinations that would lose state or notifications."""
    target = _target("REDIS_URL", url) if url else None
    queue = _target("NOTIFY_REDIS_URL", notify_url) if notify_url else None
    if queue is not None and queue.kind is Kind.CLUSTER:
        raise ConfigError(
            "NOTIFY_REDIS_URL: the notification queue (rq) needs multi-key transactions, "
            "which a Redis Cluster refuses; give it a redis:// or redis+sentinel:// URL"
        )
    if target is not None and target.kind is Kind.CLUSTER and queue is None:
        raise ConfigError(
            "REDIS_URL is a Redis Cluster, where the notification queue (rq) cannot run: "
            "set NOTIFY_REDIS_URL to a plain or Sentinel Redis for it"
        )
    if notify_url and target is None:
        raise ConfigError("NOTIFY_REDIS_URL needs REDIS_URL: the embedded store is per process")
    if min_replicas and (target is None or target.kind is Kind.CLUSTER):
        raise ConfigError(
            "REDIS_MIN_REPLICAS waits for the replicas of one primary: it needs a "
            "redis:// or redis+sentinel:// REDIS_URL"
        )


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    breaker = BreakerSettings(
        failure_threshold=parse(env, "BREAKER_FAILURE_THRESHOLD", positive(int), 1),
        open_timeout_s=parse(env, "BREAKER_OPEN_TIMEOUT_S", positive(float), 60.0),
        max_open_timeout_s=parse(env, "BREAKER_MAX_OPEN_TIMEOUT_S", positive(float), 900.0),
        half_open_probe_percent=parse(env, "BREAKER_HALF_OPEN_PROBE_PERCENT", percent, 10.0),
        half_open_probation_s=parse(env, "BREAKER_HALF_OPEN_PROBATION_S", positive(float), 60.0),
        transition_log_cap=parse(env, "BREAKER_TRANSITION_LOG_CAP", positive(int), 100),
    )
    if breaker.max_open_timeout_s < breaker.open_timeout_s:
        raise ConfigError("BREAKER_MAX_OPEN_TIMEOUT_S must not be less than BREAKER_OPEN_TIMEOUT_S")
    incidents = IncidentSettings(
        correlation_window_s=parse(env, "INCIDENT_CORRELATION_WINDOW_S", positive(float), 300.0),
        quiet_period_s=parse(env, "INCIDENT_QUIET_PERIOD_S", non_negative, 0.0),
        alert_timeout_s=parse(env, "INCIDENT_ALERT_TIMEOUT_S", positive(float), 86400.0),
        retention_s=parse(env, "INCIDENT_RETENTION_S", positive(float), 90 * 86400.0),
    )
    values: dict[str, Any] = {
        "webhook_token": token(env, "RECEIVER_WEBHOOK_TOKEN"),
        "api_token": token(env, "RECEIVER_API_TOKEN"),
        "admin_token": token(env, "RECEIVER_ADMIN_TOKEN"),
        "redis_url": env.get("REDIS_URL") or None,
        "tenants_file": env.get("TENANTS_FILE") or None,
        "breaker": breaker,
        "incidents": incidents,
        "max_isolated_percent": parse(env, "GUARD_MAX_ISOLATED_PERCENT", percent, 20.0),
        "shared_settle_s": parse(env, "GUARD_SHARED_SETTLE_S", non_negative, 60.0),
        "shared_release_window_s": parse(env, "GUARD_SHARED_RELEASE_WINDOW_S", non_negative, 60.0),
        "notify": load_notify(env),
        "max_body_bytes": parse(env, "RECEIVER_MAX_BODY_BYTES", positive(int), 10 * 1024 * 1024),
        "metrics_token": optional_token(env, "METRICS_TOKEN"),
        "max_alert_age_s": parse(env, "RECEIVER_MAX_ALERT_AGE_S", positive(float), 2592000.0),
        "max_alert_future_s": parse(env, "RECEIVER_MAX_ALERT_FUTURE_S", positive(float), 600.0),
        "max_label_bytes": parse(env, "RECEIVER_MAX_LABEL_BYTES", positive(int), 4096),
        "max_annotation_bytes": parse(env, "RECEIVER_MAX_ANNOTATION_BYTES", positive(int), 16384),
        "idempotency_ttl_s": parse(env, "RECEIVER_IDEMPOTENCY_TTL_S", positive(float), 86400.0),
        "sweep_interval_s": parse(env, "RECEIVER_SWEEP_INTERVAL_S", positive(float), 5.0),
        "watchdog_max_age_s": parse(env, "RECEIVER_WATCHDOG_MAX_AGE_S", positive(float), 300.0),
        "alertmanager_url": (env.get("ALERTMANAGER_URL") or "").rstrip("/") or None,
        "reconcile_interval_s": parse(env, "RECONCILE_INTERVAL_S", positive(float), 60.0),
        "redis_timeout_s": parse(env, "REDIS_TIMEOUT_S", positive(float), 2.0),
        "redis_retry_budget_s": parse(env, "REDIS_RETRY_BUDGET_S", non_negative, None),
        "redis_min_replicas": parse(env, "REDIS_MIN_REPLICAS", _count, 0),
        "notify_redis_url": env.get("NOTIFY_REDIS_URL") or None,
        "tier_hourly_cost": parse(env, "TIER_HOURLY_COST", _costs, dict(DEFAULT_TIER_HOURLY_COST)),
        "session_secret": optional_token(env, "RECEIVER_SESSION_SECRET"),
        "session_max_age_s": parse(env, "RECEIVER_SESSION_MAX_AGE_S", positive(float), 28800.0),
        "tls": bool(env.get("RECEIVER_TLS_CERT"))
        or (env.get("RECEIVER_PUBLIC_URL") or "").startswith("https://"),
        "gate": load_gate(env),
        "enforcement": parse(
            env, "ENFORCEMENT", lambda raw: Enforcement(raw.lower()), Enforcement.ENFORCE
        ),
    }
    _check_redis(values["redis_url"], values["notify_redis_url"], values["redis_min_replicas"])
    if values["tenants_file"] and not os.path.isfile(values["tenants_file"]):
        raise ConfigError(f"TENANTS_FILE: no such file {values['tenants_file']!r}")
    values.update(overrides)
    return Settings(**values)
