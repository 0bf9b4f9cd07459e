"""Incident rules without Redis: priority, SLA, joining, quiet, cost."""

from __future__ import annotations

import gc
import weakref

import pytest

from receiver.cost import impact, tenants_cost_per_hour
from receiver.incidents import (
    Incident,
    Priority,
    Scope,
    add_tenant,
    expire_alerts,
    open_incident,
    priority_for,
    quiet,
    record_alert,
    resolve,
    response_sla_s,
)
from receiver.tenants import Tier

T = 1000.0
P, G, S, B = Tier.PLATINUM, Tier.GOLD, Tier.SILVER, Tier.BRONZE


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        ([P], Priority.P0),
        ([B] * 10, Priority.P0),
        ([G], Priority.P1),
        ([S] * 7, Priority.P1),
        ([B] * 2, Priority.P2),
        ([S] * 4, Priority.P2),
        ([B] * 5, Priority.P1),
        ([B] * 9, Priority.P1),
    ],
    ids=[
        "1 platinum",
        "10 bronze",
        "1 gold",
        "7 silver",
        "2 bronze",
        "4 silver",
        "5 bronze",
        "9 bronze",
    ],
)
def test_seed_priority_framework(tiers: list[Tier], expected: Priority) -> None:
    """P0: any platinum or 10+; P1: any gold or 5-9; else P2."""
    assert priority_for(tiers, len(tiers)) is expected


@pytest.mark.parametrize(
    ("priority", "tiers", "sla_s"),
    [
        (Priority.P0, [B], 900),
        (Priority.P1, [B], 3600),
        (Priority.P2, [S, B], 14400),
        (Priority.P2, [B], 28800),
    ],
)
def test_response_sla(priority: Priority, tiers: list[Tier], sla_s: int) -> None:
    """P0 15 min, P1 60 min, P2 4 h with a silver tenant, 8 h for bronze only."""
    assert response_sla_s(priority, tiers) == sla_s


def test_priority_rises_as_tenants_join_and_never_drops() -> None:
    """P2 -> P1 at 5 tenants -> P0 at 10; each change on the timeline; never lower."""
    incident = open_incident("INC-1", Scope.TENANT, "x", T)
    seen = []
    for n in range(10):
        add_tenant(incident, f"b{n}", B, T + n, "failing")
        seen.append(incident.priority)
    assert seen[3] is Priority.P2 and seen[4] is Priority.P1 and seen[9] is Priority.P0
    raised = [e.message for e in incident.timeline if e.kind == "priority_changed"]
    assert len(raised) == 2 and "P2 -> P1" in raised[0] and "P1 -> P0" in raised[1]
    assert incident.sla_due_at == T + 900
    del incident.tenants["b0"]
    add_tenant(incident, "b1", B, T + 20, "again")
    assert incident.priority is Priority.P0


def test_gold_tenant_raises_at_once() -> None:
    """A gold tenant joining a P2 incident makes it P1 straight away."""
    incident = open_incident("INC-1", Scope.TENANT, "x", T)
    add_tenant(incident, "b1", B, T, "failing")
    add_tenant(incident, "g1", G, T + 1, "failing")
    assert incident.priority is Priority.P1
    assert incident.response_sla_s == 3600


def test_quiet_needs_resolved_alerts_and_no_isolated_tenant() -> None:
    """A resolved alert while the tenant is still isolated is not the end."""
    incident = open_incident("INC-1", Scope.TENANT, "x", T)
    add_tenant(incident, "a", B, T, "failing")
    record_alert(incident, "fp", "TenantErrorRateHigh", True, T, T, "a")
    assert not quiet(incident, isolated=set())
    record_alert(incident, "fp", "TenantErrorRateHigh", False, T, T + 30, "a")
    assert not quiet(incident, isolated={"a"})
    assert quiet(incident, isolated={"other"})


def test_silent_alerts_expire_visibly() -> None:
    """An alert with no news past the timeout expires and says so on the timeline."""
    incident = open_incident("INC-1", Scope.TENANT, "x", T)
    record_alert(incident, "fp", "TenantErrorRateHigh", True, T, T, "a")
    assert expire_alerts(incident, T + 10, timeout_s=100) == []
    assert expire_alerts(incident, T + 100, timeout_s=100) == ["fp"]
    assert quiet(incident, isolated=set())
    assert incident.timeline[-1].kind == "alert_expired"


def test_expiry_walks_the_alerts_only_once_one_could_be_due() -> None:
    """The incident keeps a bound on when its live alerts were last seen: before it
    plus the timeout nothing expires and nothing is walked; a walk moves the bound to
    the oldest alert left, so the next one expires on time."""
    incident = open_incident("INC-1", Scope.TENANT, "x", T)
    record_alert(incident, "old", "TenantErrorRateHigh", True, T, T, "a")
    record_alert(incident, "new", "TenantErrorRateHigh", True, T, T + 50, "b")
    assert incident.live_seen_from == T
    assert expire_alerts(incident, T + 99, timeout_s=100) == []
    assert expire_alerts(incident, T + 100, timeout_s=100) == ["old"]
    assert incident.live_seen_from == T + 50
    assert expire_alerts(incident, T + 149, timeout_s=100) == []
    assert expire_alerts(incident, T + 150, timeout_s=100) == ["new"]
    assert incident.live_seen_from is None and incident.live_alerts == 0
    record_alert(incident, "again", "TenantErrorRateHigh", True, T, T + 500, "a")
    assert incident.live_seen_from == T + 500
    assert expire_alerts(incident, T + 600, timeout_s=100) == ["again"]


def test_an_unknown_bound_walks_the_alerts() -> None:
    """A document from before the bound was kept has none: the first sweep walks."""
    incident = open_incident("INC-1", Scope.TENANT, "x", T)
    record_alert(incident, "fp", "TenantErrorRateHigh", True, T, T, "a")
    incident.live_seen_from = None
    assert expire_alerts(incident, T + 100, timeout_s=100) == ["fp"]


def test_cost_impact_of_the_seed_example() -> None:
    """50 tenants x 3 h x ₹36,600 = ₹54.9 lakh had all been hit (not the ₹5.5 crore quoted)."""
    incident = Incident("INC-1", Scope.TENANT, "x", created_at=T)
    incident.cost_per_hour = 150_000
    incident.all_tenants_cost_per_hour = 50 * 36_600
    resolve(incident, T + 3 * 3600, "done")
    cost = impact(incident, now=T + 10 * 3600)
    assert cost.all_tenants_cost == pytest.approx(5_490_000)
    assert cost.accrued == pytest.approx(450_000)
    assert cost.avoided == pytest.approx(5_040_000)


def test_cost_per_hour_sums_tiers() -> None:
    """Per-hour cost is the sum of the affected tenants' tier costs."""
    costs = {"platinum": 150_000, "gold": 60_000, "silver": 25_000, "bronze": 5_000}
    assert tenants_cost_per_hour([P, G, B, B], costs) == 220_000


def test_an_incident_dropped_is_freed_at_once_not_left_for_the_cyclic_collector() -> None:
    """Its maps' hooks hold it weakly: no reference cycle keeps it (and a storm's
    tens of thousands of entries) alive until the collector runs; they still work."""
    incident = open_incident("INC-1", Scope.TENANT, "t", 0.0)
    add_tenant(incident, "acme", Tier.GOLD, 1.0, "test")
    record_alert(incident, "fp", "TenantErrorRateHigh", True, 1.0, 1.0, "acme")
    assert (incident.tier_counts, incident.live_alerts) == ({"gold": 1}, 1)
    gone = weakref.ref(incident)
    gc.disable()
    try:
        del incident
        assert gone() is None
    finally:
        gc.enable()
