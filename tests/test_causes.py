"""What is known of a shared cause, without Redis: active, since, ended, hold reasons."""

from __future__ import annotations

import pytest

from receiver.causes import CauseRecord, SharedCause

T = 1000.0
DAY = 86400.0


def record(
    fp: str = "p", firing: bool = True, event_at: float = T, seen_at: float = T, **kw: str
) -> CauseRecord:
    return CauseRecord(
        fp,
        kw.get("alertname", "PlatformErrorRateHigh"),
        kw.get("tenant_id"),
        firing,
        event_at,
        seen_at,
    )


def test_nothing_known_holds_nothing() -> None:
    """No record: no cause, no hold, no end."""
    cause = SharedCause.of([], T, DAY)
    assert (cause.active, cause.since, cause.ended_at, cause.hold_reason(60)) == (
        [],
        None,
        None,
        None,
    )


def test_a_firing_cause_holds_trips_and_names_itself() -> None:
    """Firing records are active since their earliest start, and say so in the reason."""
    cause = SharedCause.of(
        [
            record("p", event_at=T - 5),
            record("n", event_at=T - 2, alertname="TenantNoisyNeighbor", tenant_id="t9"),
        ],
        T,
        DAY,
    )
    assert cause.since == T - 5 and cause.culprits == {"t9"}
    assert cause.hold_reason(60) == (
        "shared cause firing (PlatformErrorRateHigh, TenantNoisyNeighbor for t9): "
        "tenant is a victim, not isolated"
    )


@pytest.mark.parametrize(("now", "held"), [(T + 59, True), (T + 60, False)])
def test_a_resolved_cause_holds_only_while_it_settles(now: float, held: bool) -> None:
    """After the last cause resolved, trips stay held for the settle time, then not."""
    cause = SharedCause.of([record(firing=False, event_at=T)], now, DAY)
    assert cause.ended_at == T
    assert (cause.hold_reason(60) is not None) is held


def test_a_firing_record_never_repeated_expires() -> None:
    """A cause whose resolution was lost ends a max age after it was last seen."""
    cause = SharedCause.of([record(seen_at=T)], T + DAY, DAY)
    assert cause.active == [] and cause.ended_at == T + DAY
