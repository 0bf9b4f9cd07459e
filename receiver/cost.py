"""What an incident costs: per hour, accrued, and what containment avoided. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from receiver.incidents import Incident, duration_s
from receiver.tenants import Tier


@dataclass(frozen=True)
class Impact:
    cost_per_hour: float
    accrued: float
    all_tenants_cost: float
    """What the same duration would have cost with every known tenant down."""
    avoided: float


def tenants_cost_per_hour(tiers: Iterable[Tier], hourly_cost: Mapping[str, float]) -> float:
    return float(sum(hourly_cost[tier] for tier in tiers))  # a Tier is its name


def tally_cost_per_hour(tier_counts: Mapping[str, int], hourly_cost: Mapping[str, float]) -> float:
    """The same sum, from how many tenants of each tier there are."""
    return float(sum(hourly_cost[tier] * n for tier, n in tier_counts.items()))


def impact(incident: Incident, now: float) -> Impact:
    """Victims of a contained shared failure count only until it was contained."""
    hours = duration_s(incident, now) / 3600
    accrued = incident.cost_per_hour * hours
    if incident.contained_at is not None:
        victims_hours = max(0.0, incident.contained_at - incident.created_at) / 3600
        accrued -= incident.victims_cost_per_hour * (hours - victims_hours)
    everyone = max(incident.all_tenants_cost_per_hour, incident.cost_per_hour) * hours
    return Impact(incident.cost_per_hour, accrued, everyone, everyone - accrued)
