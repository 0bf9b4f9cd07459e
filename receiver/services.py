"""Everything a process builds once, outside Flask: the stores on one Redis client,
the tenant registry, the clock and what sending notifications needs. The app, the
notification worker, `blast-radius check` and the benchmarks all build it here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis

from receiver.config import Settings
from receiver.notify.hub import Hub, build_hub
from receiver.store import ScopeStore, connect
from receiver.store.incidents import IncidentStore
from receiver.tenants import Tier, load_registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: ScopeStore
    incidents: IncidentStore
    registry: Mapping[str, Tier]
    clock: Callable[[], float]
    embedded: bool
    """No REDIS_URL: an in-memory store, per process and lost on restart."""
    hub: Hub


def build_services(
    settings: Settings,
    *,
    client: redis.Redis | None = None,
    registry: Mapping[str, Tier] | None = None,
    clock: Callable[[], float] = time.time,
) -> Services:
    """Connect to `settings.redis_url` unless given a client; read the registry from
    `settings.tenants_file` unless given one (raises `RegistryError`)."""
    embedded = False
    if client is None:
        client, embedded = connect(
            settings.redis_url, settings.redis_timeout_s, settings.redis_retry_budget_s
        )
    if embedded:
        log.warning(
            "REDIS_URL is not set: using an embedded in-memory store. State is per process "
            "and lost on restart, and notifications stay queued (the worker needs Redis); "
            "set REDIS_URL for anything but a trial."
        )
    if registry is None:
        registry = load_registry(settings.tenants_file)
    store = ScopeStore(
        client,
        log_cap=settings.breaker.transition_log_cap,
        seen_ttl_s=settings.idempotency_ttl_s,
        cause_max_age_s=settings.incidents.alert_timeout_s,
    )
    incidents = IncidentStore(client, seen_ttl_s=settings.idempotency_ttl_s)
    hub = build_hub(settings, client, store, incidents, clock)
    return Services(settings, store, incidents, registry, clock, embedded, hub)
