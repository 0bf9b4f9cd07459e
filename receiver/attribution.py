"""The platform incident of a failure with a shared cause: which tenant caused it,
who suffered it, and when isolating the culprit contained it.

Pure rules over `Incident`, like `incidents`; `correlate` applies them."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from receiver.incidents import Incident

FIGURES = ("share", "baseline_share", "growth")
"""Annotations of the noisy-neighbour alert that the incident keeps, as numbers."""


def culprit_figures(annotations: Mapping[str, str]) -> dict[str, float]:
    """The alert's share figures; annotations that are not finite numbers (a growth
    from a zero baseline is infinite) are left out."""
    figures: dict[str, float] = {}
    for name in FIGURES:
        try:
            value = float(annotations.get(name, ""))
        except ValueError:
            continue
        if math.isfinite(value):
            figures[name] = value
    return figures


def describe(tenant_id: str, figures: Mapping[str, float]) -> str:
    parts = []
    if "share" in figures:
        parts.append(f"{figures['share']:.0%} of the shared load")
    if "baseline_share" in figures:
        parts.append(f"baseline {figures['baseline_share']:.0%}")
    if "growth" in figures:
        parts.append(f"{figures['growth']:.0f}x relative growth")
    return f"tenant {tenant_id}" + (f" ({', '.join(parts)})" if parts else "")


def name_culprit(
    incident: Incident, tenant_id: str, figures: Mapping[str, float], now: float
) -> bool:
    """Name a suspected culprit; True if it is new to the incident."""
    new = tenant_id not in incident.culprits
    incident.culprits[tenant_id] = {**incident.culprits.get(tenant_id, {}), **figures}
    if new:
        incident.title = f"noisy neighbour: {tenant_id} exhausting a shared resource"
        incident.log(
            now,
            "culprit",
            f"suspected culprit: {describe(tenant_id, figures)}; isolated past the guard's cap",
            tenant_id,
        )
    return new


def note_victim(incident: Incident, tenant_id: str, since: float) -> bool:
    """Record a tenant failing with the platform; True if it is new to the incident."""
    if tenant_id in incident.victims:
        return False
    incident.victims[tenant_id] = since
    return True


def contain(incident: Incident, isolated: Collection[str], now: float) -> bool:
    """Mark the incident contained once every alert but the culprits' own resolved
    while a culprit is isolated; True if it became contained just now."""
    if incident.contained_at is not None or not incident.culprits:
        return False
    held = sorted(c for c in incident.culprits if c in isolated or c in incident.isolated_at)
    if not held:
        return False
    live, total = incident.others_alerts()
    if not total or live:
        return False
    incident.contained_at = now
    downtime = victims_downtime_s(incident)
    incident.log(
        now,
        "contained",
        f"contained by isolating {', '.join(held)}: {len(incident.victims)} victims "
        f"recovered, down {downtime:.0f}s",
    )
    return True


def victims_downtime_s(incident: Incident) -> float:
    """From the first victim failing to containment (or the incident's end)."""
    start = incident.created_at if incident.first_victim_at is None else incident.first_victim_at
    end = incident.contained_at or incident.resolved_at
    if end is None:
        return 0.0
    return max(0.0, end - start)
