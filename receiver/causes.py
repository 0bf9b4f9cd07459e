"""What the receiver knows of a shared cause: the platform failing broadly
(`PlatformErrorRateHigh`) or a tenant whose load exhausts a shared resource
(`TenantNoisyNeighbor`). While one is known, tenants failing with everyone else are
victims: their trips are held back, and those isolated in the seconds before the
cause became known are released.

Pure data and rules; `store.causes` keeps the records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CauseRecord:
    fingerprint: str
    alertname: str
    tenant_id: str | None
    firing: bool
    event_at: float
    """When it started firing (`startsAt`), or when it resolved (`endsAt`)."""
    seen_at: float
    """When this state last arrived; a firing record not repeated for the alert
    timeout is taken as resolved (its resolution was lost)."""


@dataclass(frozen=True)
class SharedCause:
    records: tuple[CauseRecord, ...]
    now: float
    max_age_s: float

    @classmethod
    def of(cls, records: Iterable[CauseRecord], now: float, max_age_s: float) -> SharedCause:
        return cls(tuple(sorted(records, key=lambda r: r.fingerprint)), now, max_age_s)

    @property
    def active(self) -> list[CauseRecord]:
        return [r for r in self.records if r.firing and self.now - r.seen_at < self.max_age_s]

    @property
    def since(self) -> float | None:
        """When the earliest cause still active started."""
        return min((r.event_at for r in self.active), default=None)

    @property
    def ended_at(self) -> float | None:
        """When the last cause ended, if none is active."""
        if self.active:
            return None
        ends = [r.event_at if not r.firing else r.seen_at + self.max_age_s for r in self.records]
        return max(ends, default=None)

    @property
    def culprits(self) -> set[str]:
        return {r.tenant_id for r in self.active if r.tenant_id is not None}

    def hold_reason(self, settle_s: float) -> str | None:
        """Why a tenant's own isolation alert must not trip now, if it must not: a
        shared cause fires, or ended less than `settle_s` ago (its victims' alerts
        take that long to resolve)."""
        active = self.active
        if active:
            names = ", ".join(sorted({_describe(r) for r in active}))
            return f"shared cause firing ({names}): tenant is a victim, not isolated"
        ended = self.ended_at
        if ended is not None and self.now - ended < settle_s:
            return f"shared cause ended {self.now - ended:.0f}s ago: victims' alerts settling"
        return None

    def release_reason(self) -> str:
        names = ", ".join(sorted({_describe(r) for r in self.active}))
        return f"released: shared cause firing ({names}); tenant is a victim, not the cause"


def _describe(record: CauseRecord) -> str:
    if record.tenant_id is None:
        return record.alertname
    return f"{record.alertname} for {record.tenant_id}"
