"""Everything sending needs, built once per process (app or worker)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from rq import Queue

from receiver.config import Settings
from receiver.notify.channels import Notifier
from receiver.notify.email import Email
from receiver.notify.pagerduty import PagerDuty
from receiver.notify.slack import Slack
from receiver.store import ScopeStore
from receiver.store.client import binary_twin, open_client
from receiver.store.deliveries import DeliveryStore
from receiver.store.incidents import IncidentStore
from receiver.store.updates import DeferredUpdates

QUEUE_NAME = "blast-radius-notify"


@dataclass
class Hub:
    settings: Settings
    store: ScopeStore
    incidents: IncidentStore
    deliveries: DeliveryStore
    queue: Queue
    channels: dict[str, Notifier]
    clock: Callable[[], float]
    updates: DeferredUpdates


def queue_client(settings: Settings, client: redis.Redis) -> redis.Redis:
    """rq's connection (bytes, as it needs): `NOTIFY_REDIS_URL`'s server, else the
    store's own (config refuses a cluster without one)."""
    if settings.notify_redis_url:
        return open_client(
            settings.notify_redis_url,
            settings.redis_timeout_s,
            retry_budget_s=settings.redis_retry_budget_s,
            decode=False,
        )
    return binary_twin(client)


def build_hub(
    settings: Settings,
    client: redis.Redis,
    store: ScopeStore,
    incidents: IncidentStore,
    clock: Callable[[], float],
) -> Hub:
    notify = settings.notify
    candidates: list[Notifier] = [PagerDuty(notify), Slack(notify), Email(notify)]
    channels = {c.name: c for c in candidates if notify.configured(c.name)}
    queue = Queue(QUEUE_NAME, connection=queue_client(settings, client))
    deliveries = DeliveryStore(client)
    updates = DeferredUpdates(client)
    return Hub(settings, store, incidents, deliveries, queue, channels, clock, updates)
