"""Every known tenant's breaker state at a glance, read in bulk: the console's fleet
and the metrics' per-tenant gauge. Pipelined reads of a few thousand tenants per
round trip, never one call per tenant."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from receiver.breaker import ISOLATING, State, is_held, tick
from receiver.config import Settings
from receiver.guard import guard_cap
from receiver.store import ScopeStore
from receiver.tenants import Tier, resolve_tier

BATCH = 2000
HELD = "held"
"""The tile state of a trip the blast-radius guard held back (the breaker is closed)."""


@dataclass(frozen=True)
class Tile:
    tenant_id: str
    tier: str
    state: State
    held: bool

    @property
    def shown(self) -> str:
        """The state a person sees: the breaker's, or `held` for a held-back trip."""
        return HELD if self.held else self.state.value


@dataclass
class Fleet:
    tiles: list[Tile] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    isolated: int = 0
    cap: int = 1

    def by_tier(self) -> dict[str, list[Tile]]:
        groups: dict[str, list[Tile]] = {tier.value: [] for tier in Tier}
        for tile in self.tiles:
            groups.setdefault(tile.tier, []).append(tile)
        return {tier: tiles for tier, tiles in groups.items() if tiles}


def tiles(
    store: ScopeStore, settings: Settings, registry: Mapping[str, Tier], now: float
) -> Iterator[Tile]:
    """Each known tenant's state with time-based transitions applied, in index order."""
    for batch in store.iter_known_tenants(BATCH):
        snapshots = store.read({tenant_id: [] for tenant_id in batch}, now)
        for tenant_id in batch:
            read = snapshots[tenant_id]
            breaker, _ = tick(read.breaker, now, settings.breaker)
            tier = resolve_tier(read.tier_override, registry.get(tenant_id), read.tier_label).tier
            yield Tile(tenant_id, tier.value, breaker.state, is_held(breaker, settings.breaker))


def read_fleet(
    store: ScopeStore, settings: Settings, registry: Mapping[str, Tier], now: float
) -> Fleet:
    fleet = Fleet(tiles=list(tiles(store, settings, registry, now)))
    fleet.counts = Counter(tile.shown for tile in fleet.tiles)
    fleet.isolated = sum(1 for tile in fleet.tiles if tile.state in ISOLATING)
    fleet.cap = guard_cap(len(fleet.tiles), settings.max_isolated_percent)
    return fleet
