"""The simulated platform's workload: tenants and their queries, the shared pool
they hold, and how both are exported. Plain data and arithmetic; `simulator` serves
it and plays the gateway."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, TypeGuard

from receiver.tenants import is_valid_tenant_id

FULL_SHARE = {"closed": 1.0, "disabled": 1.0, "ungated": 1.0, "open": 0.0, "forced_open": 0.0}
TENANT_FIELDS = frozenset({"tenant_id", "tier", "qps", "error_ratio", "cost_s"})
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)


@dataclass
class DurationHistogram:
    """`rag_query_duration_seconds` of one tenant; `bucket_counts` are cumulative."""

    bucket_counts: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS_S))
    sum_s: float = 0.0
    count: int = 0

    def observe(self, duration_s: float, queries: int) -> None:
        for i, le in enumerate(DURATION_BUCKETS_S):
            if duration_s <= le:
                self.bucket_counts[i] += queries
        self.sum_s += duration_s * queries
        self.count += queries


@dataclass
class Tenant:
    tenant_id: str
    tier: str
    qps: float
    error_ratio: float = 0.0
    cost_s: float = 0.01
    """Pool-seconds one query holds the shared backend while the pool is not saturated."""
    queries: int = 0
    errors: int = 0
    rejected: int = 0
    last_served: int = 0
    last_errors: int = 0
    """The last tick's served and failed queries: the error ratio tenants see right now."""
    admission: str = "ungated"
    """The breaker state the gateway last got: a receiver state, `ungated` (no
    receiver configured) or `unreachable`."""
    _query_carry: float = 0.0
    _served_carry: float = 0.0
    _error_carry: float = 0.0
    _durations: DurationHistogram = field(default_factory=DurationHistogram)

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass(frozen=True)
class Pool:
    """The shared backend during one tick: its capacity and the load admitted into it,
    both in pool-seconds per second."""

    capacity_pool_s: float | None
    load_pool_s: float = 0.0

    @property
    def saturated(self) -> bool:
        return self.capacity_pool_s is not None and self.load_pool_s > self.capacity_pool_s

    @property
    def timeout_share(self) -> float:
        """The share of every admitted query that times out waiting."""
        if not self.saturated or self.capacity_pool_s is None:
            return 0.0
        return 1 - self.capacity_pool_s / self.load_pool_s

    @property
    def stretch(self) -> float:
        """How many times its own cost a query holds the pool, waiting included."""
        if not self.saturated or self.capacity_pool_s is None:
            return 1.0
        return self.load_pool_s / self.capacity_pool_s

    def public(self) -> dict[str, Any]:
        return {
            "capacity_pool_s": self.capacity_pool_s,
            "load_pool_s": self.load_pool_s,
            "saturated": self.saturated,
        }


def is_number(value: object) -> TypeGuard[float]:
    """A finite number; JSON's true and false are ints to Python, not to a client."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def checked_capacity(value: object) -> float | None:
    if value is None:
        return None
    if is_number(value) and value > 0:
        return float(value)
    raise ValueError("capacity_pool_s: a number above 0, or null for no pool")


def _spec_number(text: str, name: str, part: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a number of at least 0 in {part!r}")
    return value


def parse_tenants(spec: str) -> list[Tenant]:
    """`t1:gold:5,t2:silver:0.5:0.02` (id:tier:qps[:cost_s]) as tenants."""
    tenants = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        fields = part.split(":")
        if len(fields) not in (3, 4) or not is_valid_tenant_id(fields[0]) or not fields[1]:
            raise ValueError(f"expected id:tier:qps[:cost_s], got {part!r}")
        tenant = Tenant(fields[0], fields[1], _spec_number(fields[2], "qps", part))
        if len(fields) == 4:
            tenant.cost_s = _spec_number(fields[3], "cost_s", part)
        tenants.append(tenant)
    return tenants


def carried(amount: float, carry: float) -> tuple[int, float]:
    """Whole units of `amount` plus what was left over last time, and the new leftover."""
    total = amount + carry
    whole = math.floor(total + 1e-9)
    return whole, total - whole


def failure_share(error_ratio: float, timeout_share: float) -> float:
    """A query fails on its own or times out in the pool, independently."""
    if not timeout_share:
        return error_ratio
    return 1 - (1 - error_ratio) * (1 - timeout_share)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def histogram_lines(tenants: list[Tenant]) -> list[str]:
    name = "rag_query_duration_seconds"
    lines = [
        f"# HELP {name} How long a query held the shared backend pool, waiting included.",
        f"# TYPE {name} histogram",
    ]
    for t in tenants:
        labels = f'tenant_id="{escape(t.tenant_id)}"'
        for le, count in zip(DURATION_BUCKETS_S, t._durations.bucket_counts, strict=True):
            bound = "+Inf" if le == math.inf else f"{le:g}"
            lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {count}')
        lines.append(f"{name}_sum{{{labels}}} {t._durations.sum_s!r}")
        lines.append(f"{name}_count{{{labels}}} {t._durations.count}")
    return lines
