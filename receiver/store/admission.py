"""The gateways' deny-list (`keys.ADMISSION`): every tenant not fully admitted, so a
gateway's feed is one `HGETALL` and its forward-auth check one `HGET`, however many
tenants are known. It follows each breaker commit in the round trip after it (the
list lives in one slot and a breaker in its tenant's, so one script cannot write
both on a cluster); each entry carries the breaker version it follows, so racing
writers leave the newest, and the sweep repairs an entry a crash left behind.

An entry holds only what admission needs (state, times, open count, whether an
isolation alert fires); the time-based transitions are applied when it is read, as
for every breaker. `_version` moves with every entry change: the same number on every
receiver that reads the same Redis."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from receiver.breaker import Breaker, State
from receiver.store import keys as k

VERSION_FIELD = "_version"
FIRING = frozenset({"firing"})
"""Stands for the fingerprints the entry does not carry: only whether any fires
matters to admission (it decides how probation ends)."""

# KEYS[1] the deny-list, KEYS[2] the version of each tenant's breaker it last followed
# ARGV: triples of tenant, breaker version, entry ("" for none: admitted). A triple
# older than what the list already follows is skipped, so two writers that race
# leave the newer breaker's entry. `_version` moves when an entry changes.
# Returns how many entries changed.
SYNC = """
local changed = 0
for i = 1, #ARGV, 3 do
  local tenant, version, entry = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  if tonumber(redis.call('HGET', KEYS[2], tenant) or '0') < version then
    redis.call('HSET', KEYS[2], tenant, version)
    local old = redis.call('HGET', KEYS[1], tenant)
    if entry ~= '' and old ~= entry then
      redis.call('HSET', KEYS[1], tenant, entry)
      changed = changed + 1
    elseif entry == '' and old then
      redis.call('HDEL', KEYS[1], tenant)
      changed = changed + 1
    end
  end
end
if changed > 0 then redis.call('HINCRBY', KEYS[1], '_version', 1) end
return changed
"""
SYNC_ENTRIES = 1000
"""Entries per `SYNC` call: a few milliseconds of Redis's time, so other clients'
commands wait no longer than that."""
ENTRY_STATES = frozenset({State.OPEN, State.HALF_OPEN, State.FORCED_OPEN})


def entry_of(breaker: Breaker) -> str:
    """A breaker's entry ("" for a tenant admitted in full), its times written as the
    state hash writes them; `breaker_from_entry` reads it back."""
    if breaker.state not in ENTRY_STATES:
        return ""

    def num(value: float | None) -> str:
        return "" if value is None else repr(value)

    firing = "1" if breaker.firing else "0"
    times = (num(breaker.opened_at), num(breaker.half_open_at))
    return "\t".join((breaker.state, *times, str(breaker.open_count), firing))


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


def _entries(raw: Mapping[str, str]) -> dict[str, str]:
    """The tenants' entries of the hash, without its own fields (`_version`, and
    `_built` left by earlier versions): no tenant id starts with `_`."""
    return {tenant: entry for tenant, entry in raw.items() if not tenant.startswith("_")}


class AdmissionStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._sync = client.register_script(SYNC)

    def read(self) -> DenyList:
        """The whole list and its version: one command."""
        raw: dict[str, str] = self.client.hgetall(k.ADMISSION)  # type: ignore[assignment]
        version = int(raw.get(VERSION_FIELD) or 0)
        return DenyList(version, {t: breaker_from_entry(e) for t, e in _entries(raw).items()})

    def breaker(self, tenant_id: str) -> Breaker:
        """One tenant's entry; a tenant without one is closed (or disabled): admitted."""
        entry: str | None = self.client.hget(k.ADMISSION, tenant_id)  # type: ignore[assignment]
        return breaker_from_entry(entry) if entry else Breaker()

    def version(self) -> int:
        return int(self.client.hget(k.ADMISSION, VERSION_FIELD) or 0)

    def entries(self) -> dict[str, str]:
        """Tenant -> entry as stored, for the sweep to compare with the breakers."""
        raw: dict[str, str] = self.client.hgetall(k.ADMISSION)  # type: ignore[assignment]
        return _entries(raw)

    def follow(self, entries: Mapping[str, tuple[int, str]], pipe: Any = None) -> None:
        """Make the list follow these breakers (tenant -> version, entry), unless it
        already follows a newer one. In `pipe` if given (then not executed here)."""
        args: list[Any] = []
        for tenant, (version, entry) in entries.items():
            if not tenant.startswith("_"):
                args += [tenant, version, entry]
        if not args:
            return
        own = pipe is None
        target = self.client.pipeline(transaction=False) if own else pipe
        step = 3 * SYNC_ENTRIES
        for i in range(0, len(args), step):
            keys = [k.ADMISSION, k.ADMISSION_VERSIONS]
            self._sync(keys=keys, args=args[i : i + step], client=target)
        if own:
            target.execute()
