from __future__ import annotations

from receiver.breaker import Action, State
from receiver.config import Settings
from receiver.fleet import read_fleet
from receiver.guard import guard_cap
from receiver.operator import act
from receiver.store import ScopeStore
from receiver.tenants import Tier
from tests.conftest import T0


def test_fleet_reads_every_known_tenant_with_its_tier_and_state(
    store: ScopeStore, settings: Settings
) -> None:
    """Tiles carry the registry's tier and the breaker state; counts and the cap follow."""
    store.add_known([f"t{i}" for i in range(10)], T0)
    act(store, "t3", Action.FORCE_OPEN, "test", settings.breaker, T0)
    fleet = read_fleet(store, settings, {"t1": Tier.GOLD}, T0 + 1)
    assert len(fleet.tiles) == 10
    tiles = {tile.tenant_id: tile for tile in fleet.tiles}
    assert tiles["t1"].tier == "gold" and tiles["t2"].tier == "bronze"
    assert tiles["t3"].state is State.FORCED_OPEN
    assert fleet.counts == {"closed": 9, "forced_open": 1}
    assert (fleet.isolated, fleet.cap) == (1, 2)
    assert list(fleet.by_tier()) == ["gold", "bronze"]


def test_guard_cap_matches_the_slot_script() -> None:
    """At least one, else the share of known tenants rounded down."""
    assert [guard_cap(n, 20.0) for n in (0, 4, 5, 10, 10_000)] == [1, 1, 1, 2, 2000]


def test_a_tile_reads_breaker_and_tier_fields_through_the_scope_read(
    store: ScopeStore, settings: Settings
) -> None:
    """A tenant with nothing stored is closed; a tier set through the API and a
    forced-open breaker come back as they were written."""
    store.set_tier("gold-one", "gold", T0)
    act(store, "opened", Action.FORCE_OPEN, "why", settings.breaker, T0)
    read = store.read({tenant_id: [] for tenant_id in ("never-seen", "gold-one", "opened")}, T0)
    nothing, gold, opened = read["never-seen"], read["gold-one"], read["opened"]
    assert nothing.breaker.state is State.CLOSED and nothing.tier_override is None
    assert (gold.tier_override, gold.tier_label, gold.breaker.state) == ("gold", None, State.CLOSED)
    assert opened.breaker.state is State.FORCED_OPEN and opened.tier_override is None
