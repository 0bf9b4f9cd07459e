"""Incident updates deferred so that each incident sends at most one tenant-level
update per interval: when a shared failure brings tenants in one after another,
people get one message a minute listing them, not one per tenant.

Each change is one MULTI/EXEC transaction. Reads and changes happen under the
outbox's drain lock, so one process decides at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis

from receiver.store import keys as k


class DeferredUpdates:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def last_sent(self, incident_ids: Sequence[str]) -> dict[str, float]:
        """When each incident's latest notification went out, for those that sent one."""
        if not incident_ids:
            return {}
        values = self.client.hmget(k.UPDATES_SENT, list(incident_ids))
        return {i: float(v) for i, v in zip(incident_ids, values, strict=True) if v}

    def defer(self, incident_id: str, members: Iterable[str], due: float) -> None:
        """Keep `members` (what the notices said) for the incident's next update, due
        at `due` (an earlier due time already set stays)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(k.deferred_update_key(incident_id), *members)
        pipe.zadd(k.UPDATES_DUE, {incident_id: due}, nx=True)
        pipe.execute()

    def due(self, now: float, limit: int) -> dict[str, set[str]]:
        """Deferred updates due by `now`, with what each carries."""
        ids: list[str] = self.client.zrangebyscore(k.UPDATES_DUE, "-inf", now, 0, limit)  # type: ignore[assignment]
        found = self.deferred(ids)
        return {incident_id: found.get(incident_id, set()) for incident_id in ids}

    def deferred(self, incident_ids: Sequence[str]) -> dict[str, set[str]]:
        """What is deferred for each of these incidents, due or not (those with any)."""
        if not incident_ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for incident_id in incident_ids:
            pipe.smembers(k.deferred_update_key(incident_id))
        found = zip(incident_ids, pipe.execute(), strict=True)
        return {i: set(members) for i, members in found if members}

    def sent(self, incident_id: str, now: float, final: bool) -> None:
        """Record a notification sent for the incident, which carries whatever was
        deferred; `final` (the incident resolved or is gone) forgets the incident."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(k.deferred_update_key(incident_id))
        pipe.zrem(k.UPDATES_DUE, incident_id)
        if final:
            pipe.hdel(k.UPDATES_SENT, incident_id)
        else:
            pipe.hset(k.UPDATES_SENT, incident_id, repr(now))
        pipe.execute()
