"""The blast-radius guard's isolation slots: at most a share of known tenants hold
one, each an isolating breaker. Repaired by the sweep where a slot and its breaker
disagree (a process died between a commit and its slot update)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from receiver.quick_init import quick_init
from receiver.store import keys as k
from receiver.store.scope_scripts import CHUNK, TAKE_SLOT

# KEYS[1] isolated set, KEYS[2] known tenants zset
# ARGV[1] max isolated percent, ARGV[2] now (indexes the tenants as known), ARGV[3..]
# tenants, in order of preference.
# Returns the known tenants and the cap, then per tenant whether it holds a slot
# (1/0) and how many are held after it, first come first served. The index goes
# many tenants at a time: a storm asks for 10,000 slots in one call.
ACQUIRE_ISOLATION = (
    TAKE_SLOT
    + f"""
for from = 3, #ARGV, {CHUNK} do
  local scored = {{}}
  for i = from, math.min(#ARGV, from + {CHUNK} - 1) do
    scored[#scored + 1] = ARGV[2]
    scored[#scored + 1] = ARGV[i]
  end
  redis.call('ZADD', KEYS[2], 'NX', unpack(scored))
end
local out = {{0, 0}}
for i = 3, #ARGV do
  out[#out + 1] = take_slot(KEYS[1], KEYS[2], ARGV[1], ARGV[i])
  out[#out + 1] = guard.held
end
out[1], out[2] = guard.known, guard.cap
return out
"""
)


# KEYS[1] isolated set, KEYS[2] known tenants zset; ARGV tenants.
# Returns the slots held, the known tenants, then the tenants that hold one: what a
# delivery reads of the guard, one command in its first round trip (a storm's new
# tenants hold none, and none are listed).
READ_GUARD = f"""
local held = redis.call('SCARD', KEYS[1])
local out = {{held, redis.call('ZCARD', KEYS[2])}}
if held == 0 then return out end
for from = 1, #ARGV, {CHUNK} do
  local upto = math.min(#ARGV, from + {CHUNK} - 1)
  local found = redis.call('SMISMEMBER', KEYS[1], unpack(ARGV, from, upto))
  for j = 1, #found do
    if found[j] == 1 then out[#out + 1] = ARGV[from + j - 1] end
  end
end
return out
"""


# KEYS[1] isolated set, KEYS[2] doubts hash
# ARGV: triples of tenant, version, 1/0 (should hold a slot or not): tenants whose
# slot disagreed with the breaker read at that version. A disagreement seen at the
# same version in the previous sweep too (no commit in between, so it is not a
# commit racing its own slot update) is repaired; doubts not repeated are forgotten.
# Returns the tenants repaired.
REPAIR_SLOTS = """
local listed = {}
local repaired = {}
for i = 1, #ARGV, 3 do
  local tenant, doubt = ARGV[i], ARGV[i + 1] .. ':' .. ARGV[i + 2]
  listed[tenant] = true
  if redis.call('HGET', KEYS[2], tenant) == doubt then
    if ARGV[i + 2] == '1' then
      redis.call('SADD', KEYS[1], tenant)
    else
      redis.call('SREM', KEYS[1], tenant)
    end
    redis.call('HDEL', KEYS[2], tenant)
    repaired[#repaired + 1] = tenant
  else
    redis.call('HSET', KEYS[2], tenant, doubt)
  end
end
for _, tenant in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not listed[tenant] then redis.call('HDEL', KEYS[2], tenant) end
end
return repaired
"""


@quick_init
@dataclass(frozen=True)
class Slot:
    granted: bool
    isolated: int
    known: int
    cap: int


@quick_init
@dataclass(frozen=True)
class GuardRead:
    held: int
    """Isolation slots held."""
    known: int
    holding: frozenset[str]
    """Of the tenants asked about, those holding a slot."""


class SlotStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._acquire = client.register_script(ACQUIRE_ISOLATION)
        self._read_guard = client.register_script(READ_GUARD)
        self._repair = client.register_script(REPAIR_SLOTS)

    def queue_read(self, pipe: Any, tenants: Sequence[str]) -> None:
        """The guard's counts, and which of `tenants` hold a slot, on `pipe`; its
        reply goes to `guard_read`."""
        self._read_guard(keys=[k.ISOLATED, k.TENANTS], args=list(tenants), client=pipe)

    @staticmethod
    def guard_read(reply: Sequence[Any]) -> GuardRead:
        held, known, *holding = reply
        return GuardRead(int(held), int(known), frozenset(holding))

    def acquire(self, tenant_id: str, max_percent: float, now: float) -> Slot:
        """One of the blast-radius guard's isolation slots, if the cap allows."""
        return self.acquire_many([tenant_id], max_percent, now)[tenant_id]

    def acquire_many(
        self, tenant_ids: Sequence[str], max_percent: float, now: float
    ) -> dict[str, Slot]:
        """Slots for several tenants in one atomic step, first come first served."""
        if not tenant_ids:
            return {}
        reply = self._acquire(keys=[k.ISOLATED, k.TENANTS], args=[max_percent, now, *tenant_ids])
        known, cap = int(reply[0]), int(reply[1])
        return {
            tenant: Slot(bool(reply[i]), int(reply[i + 1]), known, cap)
            for tenant, i in zip(tenant_ids, range(2, len(reply), 2), strict=True)
        }

    def sync(self, isolating: Mapping[str, bool], pipe: Any = None) -> None:
        """Hold slots for isolating tenants and free the others' (idempotent). In
        `pipe` if given (then not executed here)."""
        add = [tenant for tenant, held in isolating.items() if held]
        remove = [tenant for tenant, held in isolating.items() if not held]
        own = pipe is None
        pipe = self.client.pipeline(transaction=False) if own else pipe
        if add:
            pipe.sadd(k.ISOLATED, *add)
        if remove:
            pipe.srem(k.ISOLATED, *remove)
        if own:
            pipe.execute()

    def repair(self, doubts: Mapping[str, tuple[int, bool]]) -> list[str]:
        """Tenants whose slot disagrees with their breaker (version read, should
        hold one); repairs those that disagreed the same way last time."""
        args: list[Any] = []
        for tenant, (version, should_hold) in doubts.items():
            args += [tenant, version, int(should_hold)]
        repaired: list[str] = self._repair(keys=[k.ISOLATED, k.SLOT_DOUBTS], args=args)
        return repaired

    def isolated(self) -> set[str]:
        return set(self.client.smembers(k.ISOLATED))  # type: ignore[arg-type]

    def isolated_view(self) -> IsolatedView:
        return IsolatedView(self.client)


class IsolatedView(Collection[str]):
    """Who holds a slot, read only as far as asked: nothing until a tenant is looked
    up (then that tenant), the whole set only for a walk. A tenant joining an
    incident usually needs none of it."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._known: dict[str, bool] = {}
        self._all: set[str] | None = None

    def __contains__(self, tenant: object) -> bool:
        if not isinstance(tenant, str):
            return False
        if self._all is not None:
            return tenant in self._all
        if tenant not in self._known:
            self._known[tenant] = bool(self.client.sismember(k.ISOLATED, tenant))
        return self._known[tenant]

    def prefetch(self, tenants: Sequence[str]) -> None:
        """Look these tenants up together (one round trip)."""
        asked = [t for t in dict.fromkeys(tenants) if t not in self._known]
        if asked and self._all is None:
            found = self.client.smismember(k.ISOLATED, asked)
            self._known.update(zip(asked, (bool(m) for m in found), strict=True))

    def _whole(self) -> set[str]:
        if self._all is None:
            self._all = set(self.client.smembers(k.ISOLATED))  # type: ignore[arg-type]
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole())

    def __len__(self) -> int:
        return len(self._whole())
