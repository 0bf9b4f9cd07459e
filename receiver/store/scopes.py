"""Tenant and platform scopes: snapshots, compare-and-set commits, the tenant
index and the Watchdog heartbeat. The guard's isolation slots are `slots`, the
records of shared causes `causes`.

Every change to a scope goes through `COMMIT_SCOPES`, a compare-and-set on the
scope's version: the domain code computes the new state from what it read, and the
script applies it only if nobody else changed the scope in between. Reads and
commits go many scopes per script call (`scope_scripts`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from itertools import islice
from typing import Any

import redis
from redis.crc import key_slot

from receiver import jsontext
from receiver.breaker import Transition
from receiver.store import keys as k
from receiver.store.admission import AdmissionStore
from receiver.store.causes import CauseStore
from receiver.store.client import is_cluster
from receiver.store.codec import (
    BREAKER_FIELDS,
    transition_from_json,
)
from receiver.store.overlap import Fill, execute_overlapped, send_soon, submit
from receiver.store.pending import Pending
from receiver.store.scope_scripts import BATCH_SCOPES, COMMIT_SCOPES, PART_SCOPES, READ_SCOPES
from receiver.store.scope_wire import (
    COMMIT_KEYS,
    READ_KEYS,
    Change,
    DeliveryRead,
    Snapshot,
    commit_args,
    snapshots_of,
)
from receiver.store.slots import Slot, SlotStore

log = logging.getLogger(__name__)
REFIRE_GRACE_S = 60.0
"""How long after a resolution a copy of the earlier firing state stays a duplicate
(an HA peer's late delivery); after it, the same state firing again is new."""


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
        self._commit = client.register_script(COMMIT_SCOPES)
        self._read = client.register_script(READ_SCOPES)
        self._by_slot = is_cluster(client)
        self.commits_slots = not self._by_slot
        """Whether a commit can take the guard's slots itself: on a cluster the slots
        are in another hash slot than the scopes, so they are taken beforehand."""
        self.slots = SlotStore(client)
        self.admission = AdmissionStore(client)

    def ping(self) -> bool:
        return bool(self.client.ping())

    def read(self, scopes: Mapping[str, Sequence[str]], now: float) -> dict[str, Snapshot]:
        """Snapshots of several scopes in one round trip; `scopes` maps each to the
        delivery keys to check against its seen set."""
        pipe = self.client.pipeline(transaction=False)
        batches = self._queue_reads(pipe, scopes, now)
        return snapshots_of(batches, iter(pipe.execute()))

    def read_delivery(
        self,
        scopes: Mapping[str, Sequence[str]],
        now: float,
        index: Iterable[str] = (),
        board_keys: Sequence[str] = (),
        guard_for: Sequence[str] | None = None,
    ) -> DeliveryRead:
        """`read`, plus in the same round trip the shared cause and whether the
        incident board has yet to see any of `board_keys`: all a delivery reads
        before it computes. Tenants in `index` are added to the tenant index; with
        `guard_for`, the guard's counts are read after that, and which of those
        tenants hold a slot. Past `PART_SCOPES` scopes, the rest are read in parts
        sent behind the first (`DeliveryRead.stream`)."""
        order = list(scopes)
        head, rest = order[:PART_SCOPES], order[PART_SCOPES:]
        pipe = self.client.pipeline(transaction=False)
        index = list(index)
        if index:
            _index(pipe, index, now)
        if guard_for is not None:
            self.slots.queue_read(pipe, guard_for)
        pipe.hgetall(k.SHARED_CAUSES)
        if board_keys:
            pipe.zmscore(k.INCIDENTS_SEEN, list(board_keys))
        batches = self._queue_reads(pipe, {scope: scopes[scope] for scope in head}, now)
        later: list[tuple[list[list[str]], Future[list[Any]]]] = []
        if not rest:
            replies = iter(pipe.execute()[1 if index else 0 :])
        else:
            # A large delivery: the rest of its scopes in parts sent behind the first.
            first = submit(pipe)
            later = [
                self._read_soon({scope: scopes[scope] for scope in rest[i : i + PART_SCOPES]}, now)
                for i in range(0, len(rest), PART_SCOPES)
            ]
            replies = iter(first.result()[1 if index else 0 :])
        guard = None if guard_for is None else self.slots.guard_read(next(replies))
        cause = self.causes.parse(next(replies), now)
        board_scores = next(replies) if board_keys else []
        unseen = any(score is None or score <= now for score in board_scores)

        def parts() -> Iterator[dict[str, Snapshot]]:
            yield snapshots_of(batches, replies)
            for part_batches, future in later:
                yield snapshots_of(part_batches, iter(future.result()))

        return DeliveryRead(parts(), cause, unseen, guard)

    def _read_soon(
        self, scopes: Mapping[str, Sequence[str]], now: float
    ) -> tuple[list[list[str]], Future[list[Any]]]:
        """`read`'s calls for `scopes`, sent from a sending thread; the scopes of each
        call and the replies to come."""
        batches: list[list[str]] = []

        def fill(pipe: Any) -> None:
            batches.extend(self._queue_reads(pipe, scopes, now))

        return batches, send_soon(self.client, fill)

    def _queue_reads(
        self, pipe: Any, scopes: Mapping[str, Sequence[str]], now: float
    ) -> list[list[str]]:
        """`READ_SCOPES` calls for `scopes` on `pipe`; the scopes of each call."""
        order = list(scopes)
        batches = [[order[i] for i in batch] for batch in self._batches(order)]
        for batch in batches:
            keys: list[str] = []
            args: list[Any] = [repr(now)]
            for scope in batch:
                keys += k.scope_keys(scope, READ_KEYS)
                delivery_keys = scopes[scope]
                args.append(len(delivery_keys))
                args += delivery_keys
            self._read(keys=keys, args=args, client=pipe)
        return batches

    def _batches(self, scopes: Sequence[str]) -> list[list[int]]:
        """The positions of `scopes` in groups for one script call each: up to
        `BATCH_SCOPES`, and on a cluster of one slot (a script's keys share one)."""
        if not self._by_slot:
            return [
                list(range(i, min(i + BATCH_SCOPES, len(scopes))))
                for i in range(0, len(scopes), BATCH_SCOPES)
            ]
        by_slot: dict[int, list[int]] = {}
        for i, scope in enumerate(scopes):
            by_slot.setdefault(key_slot(_key(scope, "state").encode()), []).append(i)
        return [
            group[i : i + BATCH_SCOPES]
            for group in by_slot.values()
            for i in range(0, len(group), BATCH_SCOPES)
        ]

    def commit(
        self,
        changes: Iterable[Change],
        now: float,
        known: Iterable[str] = (),
        max_isolated_percent: float | None = None,
    ) -> list[int | Slot]:
        """Apply each change if its scope is still at the version it was read at, and,
        for a change that needs a guard slot (`slot`, under `max_isolated_percent`),
        if the guard grants it one.

        Returns per change the new version, 0 where the scope had moved on, or the
        refused `Slot`. Tenants in `known` are added to the tenant index. `changes`
        may be a generator that computes them: it is taken `PART_SCOPES` at a time,
        and each part goes to Redis while the next is computed (`overlap`)."""
        return [
            version for _, version in self.committing(changes, now, known, max_isolated_percent)
        ]

    def committing(
        self,
        changes: Iterable[Change],
        now: float,
        known: Iterable[str] = (),
        max_isolated_percent: float | None = None,
    ) -> Iterator[tuple[Change, int | Slot]]:
        """`commit`, each change with its outcome, a part's as soon as it is answered
        once every part is sent: the caller takes the first parts' outcomes while
        Redis still runs the last."""
        guarded = max_isolated_percent is not None and self.commits_slots
        header: list[Any] = [
            repr(now),
            repr(now + self.seen_ttl_s),
            self.log_cap,
            repr(now - self.seen_ttl_s),
            repr(now + min(REFIRE_GRACE_S, self.seen_ttl_s)),
            max_isolated_percent if guarded else "",
            len(BREAKER_FIELDS),
            *BREAKER_FIELDS,
        ]
        guard_keys = [k.ISOLATED, k.TENANTS] if guarded else []
        taken: list[Change] = []
        layout: list[list[list[int]]] = []
        """Per part, the positions in `taken` of each of its script calls."""
        pending = iter(changes)
        first = list(islice(pending, PART_SCOPES))
        known = list(known)

        def fill(part: list[Change], with_known: bool) -> Fill:
            start = len(taken)
            taken.extend(part)
            part_batches = [[start + i for i in b] for b in self._batches([c.scope for c in part])]
            layout.append(part_batches)

            def into(pipe: Any) -> None:
                for batch in part_batches:
                    keys: list[str] = []
                    args = list(header)
                    for i in batch:
                        keys += k.scope_keys(taken[i].scope, COMMIT_KEYS)
                        commit_args(taken[i], args, guarded)
                    self._commit(keys=keys + guard_keys, args=args, client=pipe)
                if with_known and known:
                    _index(pipe, known, now)

            return into

        def parts() -> Iterator[Fill]:
            yield fill(first, with_known=True)
            while part := list(islice(pending, PART_SCOPES)):
                yield fill(part, with_known=False)

        answered: Iterable[list[Any]]
        if len(first) < PART_SCOPES:
            if not first and not known:
                return
            pipe = self.client.pipeline(transaction=False)
            fill(first, with_known=True)(pipe)
            answered = [pipe.execute()]
        else:
            answered = execute_overlapped(self.client, parts())
        for n, part_replies in enumerate(answered):  # parts are laid out as they are sent
            replies = iter(part_replies)
            versions: dict[int, int | Slot] = {}
            for batch in layout[n]:
                for i, version in zip(batch, next(replies), strict=True):
                    if isinstance(version, list):
                        held, known_count, cap = map(int, version)
                        versions[i] = Slot(False, held, known_count, cap)
                    else:
                        versions[i] = int(version)
            for i in sorted(versions):
                yield taken[i], versions[i]

    def follow(
        self,
        isolating: Mapping[str, bool],
        entries: Mapping[str, tuple[int, str]],
        pending: Pending | None = None,
    ) -> None:
        """After commits: the guard's slots and the deny-list follow the breakers
        (tenant -> isolating; tenant -> version, deny-list entry), in one round trip,
        or left in `pending` for the next one to carry."""
        if not isolating and not entries:
            return

        def slots(pipe: Any) -> None:
            self.slots.sync(isolating, pipe)

        def deny_list(pipe: Any) -> None:
            self.admission.follow(entries, pipe)

        later = Pending() if pending is None else pending
        later.add(slots)
        later.add(deny_list, len(entries), self.client)
        if pending is None:
            later.flush(self.client)

    def transitions(self, scope: str, limit: int) -> list[Transition]:
        raw: list[str] = self.client.lrange(k.scope_key(scope, "transitions"), 0, limit - 1)  # type: ignore[assignment]
        return [transition_from_json(text) for text in raw]

    def alerts(self, scope: str) -> dict[str, dict[str, Any]]:
        raw: dict[str, str] = self.client.hgetall(k.scope_key(scope, "alerts"))  # type: ignore[assignment]
        return {fingerprint: jsontext.loads(body) for fingerprint, body in raw.items()}

    def add_known(self, tenant_ids: Iterable[str], now: float) -> None:
        tenants = list(tenant_ids)
        if tenants:
            _index(self.client, tenants, now)

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
        _index(pipe, [tenant_id], now)
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


_key = k.scope_key


def _index(pipe: Any, tenants: Sequence[str], now: float) -> None:
    """Add `tenants` to the tenant index, first seen `now` (kept if already there),
    on `pipe` (or a client). The score goes as text, once: packing a float argument
    takes five times longer, and a storm indexes ten thousand."""
    pipe.zadd(k.TENANTS, dict.fromkeys(tenants, repr(now)), nx=True)
