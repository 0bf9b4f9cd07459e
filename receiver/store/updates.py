"""Incident updates deferred so that each incident sends at most one tenant-level
update per interval: when a shared failure brings tenants in one after another,
people get one message a minute listing them, not one per tenant.

Each change is one MULTI/EXEC transaction. Reads and changes happen under the
outbox's drain lock, so one process decides at a time; a round takes the lock and
reads in one round trip, and defers, trims the outbox and gives the lock back in
another."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import redis

from receiver.store import keys as k
from receiver.store.incidents import RELEASE_LOCK


@dataclass
class Batch:
    """What one drain round read, in one round trip, under its lock."""

    owner: str
    entries: list[str]
    """Outbox entries, oldest first."""
    due: list[str]
    """Incidents whose deferred update is due."""
    last_sent: dict[str, float]
    """When each incident that sent one sent its latest notification."""


# KEYS[1] the incident's deferred set, KEYS[2] due zset, KEYS[3] last-sent hash;
# ARGV[1] incident id, ARGV[2] now, ARGV[3] 1 if final, then the members sent.
SENT = """
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
else
  for i = 4, #ARGV, 1000 do
    redis.call('SREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1
"""


class DeferredUpdates:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._release = client.register_script(RELEASE_LOCK)
        self._sent = client.register_script(SENT)

    def begin(self, owner: str, ttl_s: float, now: float, limit: int) -> Batch | None:
        """Take the drain lock and read the outbox, the due updates and when each
        incident last sent (one round trip); None if another process drains now."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(k.INCIDENTS_DRAIN_LOCK, owner, nx=True, px=int(ttl_s * 1000))
        pipe.lrange(k.INCIDENTS_OUTBOX, 0, limit - 1)
        pipe.zrangebyscore(k.UPDATES_DUE, "-inf", now, 0, limit)
        pipe.hgetall(k.UPDATES_SENT)
        locked, entries, due, sent = pipe.execute()
        if not locked:
            return None
        return Batch(owner, entries, due, {i: float(at) for i, at in sent.items()})

    def finish(self, batch: Batch, deferred: Mapping[str, tuple[set[str], float]]) -> None:
        """Defer these incidents' notices (members, due time; an earlier due time
        already set stays), drop the batch's entries from the outbox and give the
        lock back, in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        for incident_id, (members, due) in deferred.items():
            pipe.sadd(k.deferred_update_key(incident_id), *members)
            pipe.zadd(k.UPDATES_DUE, {incident_id: due}, nx=True)
        if batch.entries:
            pipe.ltrim(k.INCIDENTS_OUTBOX, len(batch.entries), -1)
        self._release(keys=[k.INCIDENTS_DRAIN_LOCK], args=[batch.owner], client=pipe)
        pipe.execute()

    def unlock(self, batch: Batch) -> None:
        self._release(keys=[k.INCIDENTS_DRAIN_LOCK], args=[batch.owner])

    def deferred(self, incident_ids: Sequence[str]) -> dict[str, set[str]]:
        """What is deferred for each of these incidents, due or not (those with any)."""
        if not incident_ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for incident_id in incident_ids:
            pipe.smembers(k.deferred_update_key(incident_id))
        found = zip(incident_ids, pipe.execute(), strict=True)
        return {i: set(members) for i, members in found if members}

    def sent(self, incident_id: str, now: float, final: bool, carried: Iterable[str]) -> None:
        """Record a notification sent for the incident, carrying `carried` (what was
        deferred when it was read); `final` (the incident resolved or is gone) forgets
        the incident. Notices deferred since (a board change defers them as it
        commits) stay for the next update."""
        args: list[str | int] = [incident_id, repr(now), int(final), *carried]
        keys = [k.deferred_update_key(incident_id), k.UPDATES_DUE, k.UPDATES_SENT]
        self._sent(keys=keys, args=args)
