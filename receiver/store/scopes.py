"""Tenant and platform scopes: snapshots, compare-and-set commits, the tenant
index and the Watchdog heartbeat. The guard's isolation slots are `slots`, the
records of shared causes `causes`.

Every change to a scope goes through `COMMIT_SCOPE`, a compare-and-set on the
scope's version: the domain code computes the new state from what it read, and the
script applies it only if nobody else changed the scope in between.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from receiver.breaker import Breaker, Transition
from receiver.causes import SharedCause
from receiver.store import keys as k
from receiver.store.admission import AdmissionStore
from receiver.store.causes import CauseStore
from receiver.store.codec import (
    breaker_fields,
    breaker_from_fields,
    transition_from_json,
    transition_json,
)
from receiver.store.slots import SlotStore

log = logging.getLogger(__name__)
REFIRE_GRACE_S = 60.0
"""How long after a resolution a copy of the earlier firing state stays a duplicate
(an HA peer's late delivery); after it, the same state firing again is new."""

# KEYS[1] state hash, KEYS[2] transitions list, KEYS[3] seen zset,
# KEYS[4] alerts hash, KEYS[5] tenant hash, KEYS[6] resolved zset (one hash tag:
# the scope's, so one cluster slot)
# ARGV[1] expected version, ARGV[2] now (epoch s), ARGV[3] seen expiry (epoch s),
# ARGV[4] transition log cap, ARGV[5] tier label ("" leaves it), then six counted
# lists, each a count followed by its items: state field/value pairs, transitions
# (JSON), delivery keys, alert fingerprint/JSON pairs, fingerprints of those alerts
# that are resolved, and of those that fire; then the time before which resolved
# alerts are forgotten (up to 100 of them per call), then a time and a counted list
# of delivery keys to expire at that time (the firing state of an alert that
# resolved: a late copy of it is still a duplicate for a while, a real re-fire with
# the same start after that counts); a key's expiry is only ever brought forward.
# Returns the new version, or 0 if the version moved since the caller read it.
COMMIT_SCOPE = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[1]) then return 0 end
local i = 6
local n = tonumber(ARGV[i]); i = i + 1
redis.call('HSET', KEYS[1], 'version', version + 1, unpack(ARGV, i, i + 2 * n - 1))
i = i + 2 * n
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('LPUSH', KEYS[2], ARGV[i]); i = i + 1 end
if n > 0 then redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1) end
n = tonumber(ARGV[i]); i = i + 1
if n > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2]) end
for _ = 1, n do redis.call('ZADD', KEYS[3], ARGV[3], ARGV[i]); i = i + 1 end
n = tonumber(ARGV[i]); i = i + 1
while n > 0 do
  local take = math.min(n, 500)
  redis.call('HSET', KEYS[4], unpack(ARGV, i, i + 2 * take - 1))
  i = i + 2 * take; n = n - take
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('ZADD', KEYS[6], ARGV[2], ARGV[i]); i = i + 1 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('ZREM', KEYS[6], ARGV[i]); i = i + 1 end
local gone = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', ARGV[i], 'LIMIT', 0, 100); i = i + 1
if #gone > 0 then
  redis.call('HDEL', KEYS[4], unpack(gone))
  redis.call('ZREM', KEYS[6], unpack(gone))
end
local expire_at = ARGV[i]; i = i + 1
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('ZADD', KEYS[3], 'XX', 'LT', expire_at, ARGV[i]); i = i + 1 end
redis.call('HSETNX', KEYS[5], 'first_seen_at', ARGV[2])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[5], 'tier_label', ARGV[5]) end
return version + 1
"""


@dataclass(frozen=True)
class Snapshot:
    scope: str
    version: int
    breaker: Breaker
    tier_override: str | None = None
    tier_label: str | None = None
    seen: frozenset[str] = frozenset()


@dataclass
class Change:
    """What one caller wants to write to one scope, read at `expected_version`."""

    scope: str
    expected_version: int
    breaker: Breaker | None = None
    transitions: list[Transition] = field(default_factory=list)
    delivery_keys: list[str] = field(default_factory=list)
    alerts: dict[str, str] = field(default_factory=dict)
    """Fingerprint -> the alert's record (JSON)."""
    resolved: set[str] = field(default_factory=set)
    """Fingerprints in `alerts` whose alert is resolved: its record is forgotten after
    the idempotency TTL."""
    forget_keys: list[str] = field(default_factory=list)
    tier_label: str = ""


@dataclass(frozen=True)
class DeliveryRead:
    snapshots: dict[str, Snapshot]
    cause: SharedCause
    board_unseen: bool
    """Whether any of the board keys asked for is new to the incident board."""


class NotReplicated(redis.RedisError):
    """Fewer replicas than asked acknowledged the writes in time: answer 503, so the
    sender retries (a retried delivery changes nothing twice)."""


class ScopeStore:
    """Typed access to scope keys (see `keys`); Redis errors propagate as `redis.RedisError`."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        log_cap: int,
        seen_ttl_s: float,
        cause_max_age_s: float = 86400.0,
    ) -> None:
        self.client = client
        self.causes = CauseStore(client, max_age_s=cause_max_age_s)
        self.log_cap = log_cap
        self.seen_ttl_s = seen_ttl_s
        self._commit = client.register_script(COMMIT_SCOPE)
        self.slots = SlotStore(client)
        self.admission = AdmissionStore(client)

    def ping(self) -> bool:
        return bool(self.client.ping())

    def read(
        self, scopes: Mapping[str, Sequence[str]], now: float, index: Iterable[str] = ()
    ) -> dict[str, Snapshot]:
        """Snapshots of several scopes in one round trip; `scopes` maps each to the
        delivery keys to check against its seen set. Tenants in `index` are added to
        the tenant index in the same round trip."""
        return self.read_delivery(scopes, now, index).snapshots

    def read_delivery(
        self,
        scopes: Mapping[str, Sequence[str]],
        now: float,
        index: Iterable[str] = (),
        board_keys: Sequence[str] = (),
    ) -> DeliveryRead:
        """`read`, plus in the same round trip the shared cause and whether the
        incident board has yet to see any of `board_keys`: all a delivery reads
        before it computes."""
        pipe = self.client.pipeline(transaction=False)
        index = list(index)
        if index:
            pipe.zadd(k.TENANTS, {tenant: now for tenant in index}, nx=True)
        pipe.hgetall(k.SHARED_CAUSES)
        if board_keys:
            pipe.zmscore(k.INCIDENTS_SEEN, list(board_keys))
        order = list(scopes)
        for scope in order:
            pipe.hgetall(k.scope_key(scope, "state"))
            pipe.hgetall(k.scope_key(scope, "tenant"))
            keys = list(scopes[scope])
            if keys:
                pipe.zmscore(k.scope_key(scope, "seen"), keys)
        replies = iter(pipe.execute()[1 if index else 0 :])
        cause = self.causes.parse(next(replies), now)
        board_scores = next(replies) if board_keys else []
        snapshots: dict[str, Snapshot] = {}
        for scope in order:
            state: dict[str, str] = next(replies)
            tenant: dict[str, str] = next(replies)
            keys = list(scopes[scope])
            scores = next(replies) if keys else []
            seen = frozenset(
                key for key, score in zip(keys, scores, strict=True) if score and score > now
            )
            snapshots[scope] = Snapshot(
                scope=scope,
                version=int(state.get("version") or 0),
                breaker=breaker_from_fields(state),
                tier_override=tenant.get("tier") or None,
                tier_label=tenant.get("tier_label") or None,
                seen=seen,
            )
        unseen = any(score is None or score <= now for score in board_scores)
        return DeliveryRead(snapshots, cause, unseen)

    def commit(self, changes: Iterable[Change], now: float, known: Iterable[str] = ()) -> list[int]:
        """Apply each change if its scope is still at the version it was read at.

        Returns the new version per change, 0 where the scope had moved on. Tenants
        in `known` are added to the tenant index."""
        pipe = self.client.pipeline(transaction=False)
        changes = list(changes)
        for change in changes:
            scope = change.scope
            fields = breaker_fields(change.breaker) if change.breaker is not None else {}
            args: list[Any] = [
                change.expected_version,
                repr(now),
                repr(now + self.seen_ttl_s),
                self.log_cap,
                change.tier_label,
                len(fields),
            ]
            for name, value in fields.items():
                args += [name, value]
            args.append(len(change.transitions))
            args += [transition_json(t) for t in sorted(change.transitions, key=lambda t: t.at)]
            args.append(len(change.delivery_keys))
            args += change.delivery_keys
            args.append(len(change.alerts))
            for fingerprint, body in change.alerts.items():
                args += [fingerprint, body]
            resolved = [fp for fp in change.alerts if fp in change.resolved]
            firing = [fp for fp in change.alerts if fp not in change.resolved]
            args += [len(resolved), *resolved, len(firing), *firing, repr(now - self.seen_ttl_s)]
            grace = min(REFIRE_GRACE_S, self.seen_ttl_s)
            args += [repr(now + grace), len(change.forget_keys), *change.forget_keys]
            names = ("state", "transitions", "seen", "alerts", "tenant", "resolved")
            keys = [k.scope_key(scope, n) for n in names]
            self._commit(keys=keys, args=args, client=pipe)
        known = list(known)
        if known:
            pipe.zadd(k.TENANTS, {tenant: now for tenant in known}, nx=True)
        replies = pipe.execute()
        return [int(reply) for reply in replies[: len(changes)]]

    def follow(self, isolating: Mapping[str, bool], entries: Mapping[str, tuple[int, str]]) -> None:
        """After commits: the guard's slots and the deny-list follow the breakers
        (tenant -> isolating; tenant -> version, deny-list entry), in one round trip."""
        if not isolating and not entries:
            return
        pipe = self.client.pipeline(transaction=False)
        self.slots.sync(isolating, pipe)
        self.admission.follow(entries, pipe)
        pipe.execute()

    def transitions(self, scope: str, limit: int) -> list[Transition]:
        raw: list[str] = self.client.lrange(k.scope_key(scope, "transitions"), 0, limit - 1)  # type: ignore[assignment]
        return [transition_from_json(text) for text in raw]

    def alerts(self, scope: str) -> dict[str, dict[str, Any]]:
        raw: dict[str, str] = self.client.hgetall(k.scope_key(scope, "alerts"))  # type: ignore[assignment]
        return {fingerprint: json.loads(body) for fingerprint, body in raw.items()}

    def add_known(self, tenant_ids: Iterable[str], now: float) -> None:
        mapping = {tenant: now for tenant in tenant_ids}
        if mapping:
            self.client.zadd(k.TENANTS, mapping, nx=True)

    def known_tenants(self, offset: int, count: int) -> tuple[list[str], int]:
        pipe = self.client.pipeline(transaction=False)
        pipe.zrange(k.TENANTS, offset, offset + count - 1)
        pipe.zcard(k.TENANTS)
        ids, total = pipe.execute()
        return list(ids), int(total)

    def iter_known_tenants(self, batch: int = 500) -> Iterable[list[str]]:
        offset = 0
        while True:
            ids: list[str] = self.client.zrange(k.TENANTS, offset, offset + batch - 1)  # type: ignore[assignment]
            if not ids:
                return
            yield list(ids)
            offset += batch

    def set_tier(self, tenant_id: str, tier: str, now: float) -> None:
        """One command (atomic by itself), then index the tenant."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(k.scope_key(tenant_id, "tenant"), mapping={"tier": tier})
        pipe.zadd(k.TENANTS, {tenant_id: now}, nx=True)
        pipe.execute()

    def confirm_replicated(self, replicas: int, timeout_s: float, now: float) -> None:
        """Wait until `replicas` replicas have every write made so far: a fence write
        and `WAIT` on one connection, since WAIT counts the writes of its own
        connection and a replica that has the fence has everything before it."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(k.FENCE, repr(now), px=60_000)
        pipe.wait(replicas, max(1, int(timeout_s * 1000)))
        acknowledged = int(pipe.execute()[1])
        if acknowledged < replicas:
            raise NotReplicated(f"{acknowledged} of {replicas} replicas acknowledged in time")

    def probe_write(self, now: float) -> None:
        """A tiny write that expires: raises if Redis refuses writes (maxmemory, a
        read-only replica)."""
        self.client.set(k.READY_PROBE, repr(now), px=10_000)

    def record_watchdog(self, now: float) -> None:
        self.client.set(k.WATCHDOG, repr(now))

    def watchdog_last_seen(self) -> float | None:
        value = self.client.get(k.WATCHDOG)
        return float(value) if value else None

    def try_reconcile_lock(self, owner: str, ttl_s: float) -> bool:
        return bool(self.client.set(k.RECONCILE_LOCK, owner, nx=True, px=int(ttl_s * 1000)))

    def try_sweep_lock(self, owner: str, ttl_s: float) -> bool:
        return bool(self.client.set(k.SWEEP_LOCK, owner, nx=True, px=int(ttl_s * 1000)))

    def tier_fields(self, tenant_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """Each tenant's tier as set through the API and as last labelled on an alert."""
        pipe = self.client.pipeline(transaction=False)
        for tenant_id in tenant_ids:
            pipe.hmget(k.scope_key(tenant_id, "tenant"), ["tier", "tier_label"])
        replies = pipe.execute()
        return {
            tenant_id: (override or None, label or None)
            for tenant_id, (override, label) in zip(tenant_ids, replies, strict=True)
        }

    def flag_watchdog_missing(self) -> bool:
        """True only for the caller that raised the flag."""
        return bool(self.client.set(k.WATCHDOG_ALERTED, "1", nx=True))

    def clear_watchdog_missing(self) -> None:
        self.client.delete(k.WATCHDOG_ALERTED)
