"""The gateways' deny-list (`keys.ADMISSION`): every tenant not fully admitted, kept
by the script that commits its breaker, so a gateway's feed is one `HGETALL` and its
forward-auth check one `HGET`, however many tenants are known.

An entry holds only what admission needs (state, times, open count, whether an
isolation alert fires); the time-based transitions are applied when it is read, as
for every breaker. `_version` moves with every entry change: the same number on every
receiver that reads the same Redis."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis

from receiver.breaker import Breaker, State
from receiver.store import keys as k

VERSION_FIELD = "_version"
BUILT_FIELD = "_built"
FIRING = frozenset({"firing"})
"""Stands for the fingerprints the entry does not carry: only whether any fires
matters to admission (it decides how probation ends)."""

# A Lua function shared by the scripts that change breakers: rewrite the tenant's
# entry from its state hash as it is now; bump `_version` if the entry changed.
# An empty tenant (the platform scope) has no entry.
SYNC_ENTRY = """
local function sync_entry(admission, state_key, tenant)
  if tenant == '' then return end
  local f = redis.call('HMGET', state_key, 'state', 'opened_at', 'half_open_at',
                       'open_count', 'firing')
  local entry = false
  if f[1] == 'open' or f[1] == 'half_open' or f[1] == 'forced_open' then
    local firing = (f[5] and f[5] ~= '' and f[5] ~= '[]') and '1' or '0'
    entry = f[1] .. '\\t' .. (f[2] or '') .. '\\t' .. (f[3] or '') .. '\\t'
      .. (f[4] or '0') .. '\\t' .. firing
  end
  local old = redis.call('HGET', admission, tenant)
  if entry then
    if old ~= entry then
      redis.call('HSET', admission, tenant, entry)
      redis.call('HINCRBY', admission, '_version', 1)
    end
  elseif old then
    redis.call('HDEL', admission, tenant)
    redis.call('HINCRBY', admission, '_version', 1)
  end
end
"""

# KEYS[1] admission hash, KEYS[2..] the tenants' state hashes
# ARGV[1..] the tenants, in the same order
# Fills the entries of breakers committed before the deny-list existed.
BACKFILL = (
    SYNC_ENTRY
    + """
for i = 1, #ARGV do sync_entry(KEYS[1], KEYS[i + 1], ARGV[i]) end
return #ARGV
"""
)


@dataclass(frozen=True)
class DenyList:
    version: int
    breakers: dict[str, Breaker]


def breaker_from_entry(entry: str) -> Breaker:
    state, opened_at, half_open_at, open_count, firing = entry.split("\t")
    return Breaker(
        state=State(state),
        opened_at=float(opened_at) if opened_at else None,
        half_open_at=float(half_open_at) if half_open_at else None,
        open_count=int(open_count or 0),
        firing=FIRING if firing == "1" else frozenset(),
    )


class AdmissionStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._backfill = client.register_script(BACKFILL)

    def read(self) -> DenyList:
        """The whole list and its version: one command."""
        raw: dict[str, str] = self.client.hgetall(k.ADMISSION)  # type: ignore[assignment]
        version = int(raw.pop(VERSION_FIELD, 0) or 0)
        raw.pop(BUILT_FIELD, None)
        return DenyList(version, {t: breaker_from_entry(e) for t, e in raw.items()})

    def breaker(self, tenant_id: str) -> Breaker:
        """One tenant's entry; a tenant without one is closed (or disabled): admitted."""
        entry: str | None = self.client.hget(k.ADMISSION, tenant_id)  # type: ignore[assignment]
        return breaker_from_entry(entry) if entry else Breaker()

    def version(self) -> int:
        return int(self.client.hget(k.ADMISSION, VERSION_FIELD) or 0)

    def built(self) -> bool:
        return bool(self.client.hexists(k.ADMISSION, BUILT_FIELD))

    def backfill(self, batches: Iterable[list[str]]) -> None:
        """Fill the list from every breaker, once (after an upgrade, or a flushed Redis)."""
        for batch in batches:
            tenants = [t for t in batch if not t.startswith("_")]
            if tenants:
                state_keys = [k.scope_key(t, "state") for t in tenants]
                self._backfill(keys=[k.ADMISSION, *state_keys], args=tenants)
        self.client.hset(k.ADMISSION, BUILT_FIELD, "1")
