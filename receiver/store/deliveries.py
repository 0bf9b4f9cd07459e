"""Notification deliveries in Redis: what was (or will be) sent where, and how it went.

A delivery is written once when queued, then updated by the worker after each
attempt. Records expire after the retention; the index is pruned with them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from receiver import jsontext
from receiver.store import keys as k

RETENTION_S = 30 * 86400

# KEYS[1] rate key
# ARGV[1] minimum interval between calls (ms), ARGV[2] now (ms)
# Returns 0 when the caller may call now (and the slot is taken), else ms to wait.
TAKE_RATE_SLOT = """
local next_at = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[2])
if next_at > now then return next_at - now end
redis.call('SET', KEYS[1], now + tonumber(ARGV[1]), 'PX', math.max(tonumber(ARGV[1]) * 10, 1000))
return 0
"""


@dataclass
class Delivery:
    id: str
    incident_id: str
    channel: str
    event: str
    payload: dict[str, Any]
    created_at: float
    status: str = "pending"
    """pending (queued or waiting to retry), sent, or failed (dead letter)."""
    attempts: int = 0
    updated_at: float = 0.0
    next_attempt_at: float | None = None
    last_error: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class DeliveryStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._take = client.register_script(TAKE_RATE_SLOT)

    def add(self, deliveries: list[Delivery]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for delivery in deliveries:
            pipe.set(k.delivery_key(delivery.id), jsontext.dumps(asdict(delivery)), ex=RETENTION_S)
            pipe.zadd(k.DELIVERIES, {delivery.id: delivery.created_at})
        pipe.execute()

    def save(self, delivery: Delivery) -> None:
        self.client.set(
            k.delivery_key(delivery.id), jsontext.dumps(asdict(delivery)), ex=RETENTION_S
        )

    def get(self, delivery_id: str) -> Delivery | None:
        raw = self.client.get(k.delivery_key(delivery_id))
        return Delivery(**jsontext.loads(raw)) if raw else None

    def recent(self, limit: int, now: float) -> list[Delivery]:
        """Newest first; ids whose record expired are dropped from the index."""
        self.client.zremrangebyscore(k.DELIVERIES, "-inf", now - RETENTION_S)
        ids: list[str] = self.client.zrevrange(k.DELIVERIES, 0, limit - 1)  # type: ignore[assignment]
        if not ids:
            return []
        raws: list[str | None] = self.client.mget([k.delivery_key(i) for i in ids])  # type: ignore[assignment]
        return [Delivery(**jsontext.loads(raw)) for raw in raws if raw]

    def take_rate_slot(self, destination: str, per_s: float, now: float) -> float:
        """Seconds to wait before calling `destination`; 0 means go (slot taken)."""
        interval_ms = max(1, int(1000 / per_s))
        wait_ms = self._take(keys=[k.rate_key(destination)], args=[interval_ms, int(now * 1000)])
        return int(wait_ms) / 1000
