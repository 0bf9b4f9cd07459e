"""Settings: one frozen object built from the environment, checked at start-up.

A wrong value stops the process with one line naming the variable, so a typo in a
deployment fails loudly instead of isolating tenants with the wrong knobs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    max_body_bytes: int = 10 * 1024 * 1024
    idempotency_ttl_s: float = 24 * 3600.0
    sweep_interval_s: float = 5.0
    watchdog_max_age_s: float = 300.0
    redis_timeout_s: float = 2.0
    tier_hourly_cost: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_TIER_HOURLY_COST)
    )


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


def _token(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(
            f"{name} is required (a random secret of at least {MIN_TOKEN_LENGTH} characters)"
        )
    if len(value) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{name} must be at least {MIN_TOKEN_LENGTH} characters long")
    return value


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
        "max_body_bytes": _parse(env, "RECEIVER_MAX_BODY_BYTES", _positive(int), 10 * 1024 * 1024),
        "idempotency_ttl_s": _parse(env, "RECEIVER_IDEMPOTENCY_TTL_S", _positive(float), 86400.0),
        "sweep_interval_s": _parse(env, "RECEIVER_SWEEP_INTERVAL_S", _positive(float), 5.0),
        "watchdog_max_age_s": _parse(env, "RECEIVER_WATCHDOG_MAX_AGE_S", _positive(float), 300.0),
        "redis_timeout_s": _parse(env, "REDIS_TIMEOUT_S", _positive(float), 2.0),
        "tier_hourly_cost": _parse(env, "TIER_HOURLY_COST", _costs, dict(DEFAULT_TIER_HOURLY_COST)),
    }
    if values["tenants_file"] and not os.path.isfile(values["tenants_file"]):
        raise ConfigError(f"TENANTS_FILE: no such file {values['tenants_file']!r}")
    values.update(overrides)
    return Settings(**values)
