"""Figures derived from incidents: detection latency, percentiles, and the
aggregate statistics the stats endpoint reports."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from receiver.cost import impact
from receiver.incidents import Incident


def detection_latencies(incident: Incident) -> dict[str, float]:
    """Per tenant: its first isolation alert's start -> its first isolation."""
    first: dict[str, float] = {}
    for alert in incident.alerts.values():
        if alert.tenant_id is not None and alert.tenant_id in incident.isolated_at:
            first[alert.tenant_id] = min(
                first.get(alert.tenant_id, alert.starts_at), alert.starts_at
            )
    return {
        tenant_id: max(0.0, isolated_at - first[tenant_id])
        for tenant_id, isolated_at in incident.isolated_at.items()
        if tenant_id in first
    }


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def stats(incidents: Iterable[Incident], now: float) -> dict[str, Any]:
    items = list(incidents)
    tta = [i.acknowledged_at - i.created_at for i in items if i.acknowledged_at is not None]
    ttr = [i.resolved_at - i.created_at for i in items if i.resolved_at is not None]
    latencies = [s for i in items for s in detection_latencies(i).values()]
    impacts = [impact(i, now) for i in items]
    reviewed = [i for i in items if i.resolved_at is not None]
    return {
        "total": len(items),
        "by_priority": dict(Counter(i.priority.value for i in items)),
        "by_status": dict(Counter(i.status.value for i in items)),
        "by_scope": dict(Counter(i.scope.value for i in items)),
        "mtta_s": _mean(tta),
        "mttr_s": _mean(ttr),
        "detection_to_isolation_s": {
            "count": len(latencies),
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "max": max(latencies, default=None),
        },
        "false_positives": sum(i.false_positive for i in items),
        "false_positive_rate": (
            sum(i.false_positive for i in reviewed) / len(reviewed) if reviewed else None
        ),
        "cost_accrued": sum(x.accrued for x in impacts),
        "cost_avoided": sum(x.avoided for x in impacts),
    }
