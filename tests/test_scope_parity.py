"""The many-scope commit script against the one-scope script it replaced, kept here as
the reference: the same changes, through each, leave Redis holding the same keys
and values and return the same versions, over fresh scopes, later commits that
resolve alerts, outgrow the log cap and forget what expired, a stale one, and one
commit sent in parts."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from receiver.breaker import Breaker, State, Transition
from receiver.store import Change, ScopeStore
from receiver.store import keys as k
from receiver.store.codec import BREAKER_FIELDS, breaker_values, transition_json
from receiver.store.scope_scripts import PART_SCOPES
from receiver.store.scopes import REFIRE_GRACE_S
from tests.conftest import T0

LOG_CAP = 3
TTL_S = 600.0

# The one-scope commit as it was (one call per scope), verbatim.
ONE_SCOPE = """
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


def one_scope_commits(client: redis.Redis, changes: list[Change], now: float) -> list[int]:
    """The commit as the one-scope script's caller made it."""
    script = client.register_script(ONE_SCOPE)
    versions = []
    for change in changes:
        fields = {}
        if change.breaker is not None:
            fields = dict(zip(BREAKER_FIELDS, breaker_values(change.breaker), strict=True))
        args: list[Any] = [change.expected_version, repr(now), repr(now + TTL_S), LOG_CAP]
        args += [change.tier_label, len(fields)]
        for name, value in fields.items():
            args += [name, value]
        transitions = sorted(change.transitions, key=lambda t: t.at)
        args += [len(transitions), *map(transition_json, transitions)]
        args += [len(change.delivery_keys), *change.delivery_keys, len(change.alerts)]
        for fingerprint, body in change.alerts.items():
            args += [fingerprint, body]
        resolved = [fp for fp in change.alerts if fp in change.resolved]
        firing = [fp for fp in change.alerts if fp not in change.resolved]
        args += [len(resolved), *resolved, len(firing), *firing, repr(now - TTL_S)]
        args += [repr(now + min(REFIRE_GRACE_S, TTL_S)), len(change.forget_keys)]
        args += change.forget_keys
        names = ("state", "transitions", "seen", "alerts", "tenant", "resolved")
        keys = [k.scope_key(change.scope, name) for name in names]
        versions.append(int(script(keys=keys, args=args)))
    return versions


def contents(client: redis.Redis) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(client.scan_iter(match="br:*")):
        kind = client.type(key)
        if kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "list":
            out[key] = client.lrange(key, 0, -1)
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = client.get(key)
    return out


def moved(at: float, to: State, reason: str) -> Transition:
    return Transition(State.CLOSED, to, at, reason)


def steps() -> list[tuple[float, list[Change]]]:
    """Three deliveries' commits: new scopes; the same scopes later, past the
    idempotency TTL; then a commit read at a version long gone."""
    first = [
        Change(
            f"t{i}",
            0,
            breaker=Breaker(State.OPEN, opened_at=T0, open_count=1, firing=frozenset({"a"})),
            transitions=[moved(T0 + j, State.OPEN, f"step {j}") for j in range(i)],
            delivery_keys=[f"a:firing:{i}", f"b:resolved:{i}"],
            alerts={"a": f'{{"n":{i}}}', "b": '{"status":"resolved"}'},
            resolved={"b"},
            forget_keys=[f"b:firing:{i}"] if i % 2 else [],
            tier_label="gold" if i % 2 else "",
        )
        for i in range(5)
    ]
    later = T0 + TTL_S + 30
    second = [
        Change(
            f"t{i}",
            1,
            breaker=Breaker(),
            transitions=[moved(later + j, State.CLOSED, f"late {j}") for j in range(4)],
            delivery_keys=[f"a:resolved:{i}"],
            alerts={"a": '{"status":"resolved"}', "c": '{"new":true}'},
            resolved={"a"},
            forget_keys=[f"a:firing:{i}"],
        )
        for i in range(4)
    ] + [Change("_platform", 0, transitions=[moved(later, State.OPEN, "platform")])]
    stale = [Change("t1", 1, breaker=Breaker(State.FORCED_OPEN)), Change("t9", 0)]
    crowd = [  # more than one part of a commit (`PART_SCOPES`): sent while built
        Change(f"n{i}", 0, breaker=Breaker(State.OPEN, opened_at=T0), delivery_keys=[f"k{i}"])
        for i in range(PART_SCOPES + 100)
    ]
    return [(T0, first), (later, second), (later + 1, stale), (later + 2, crowd)]


@pytest.mark.parametrize("redis_client", ["fakeredis", "redis-server"], indirect=True)
def test_many_scope_commits_leave_what_one_scope_commits_left(
    redis_client: redis.Redis,
) -> None:
    reference = []
    for now, changes in steps():
        versions = one_scope_commits(redis_client, changes, now)
        reference.append((versions, contents(redis_client)))
    assert [versions for versions, _ in reference] == [
        [1] * 5,
        [2] * 4 + [1],
        [0, 1],
        [1] * (PART_SCOPES + 100),
    ]
    redis_client.flushall()
    store = ScopeStore(redis_client, log_cap=LOG_CAP, seen_ttl_s=TTL_S)
    for (now, changes), (versions, stored) in zip(steps(), reference, strict=True):
        assert store.commit(iter(changes), now) == versions
        assert contents(redis_client) == stored
