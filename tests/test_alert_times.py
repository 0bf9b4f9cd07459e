"""Alert times outside a sane window are rejected, alone and with a reason, so they
cannot poison detection latency or the stats. The shipped window: 30 days back,
10 minutes ahead of the receiver's clock."""

from __future__ import annotations

import pytest

from receiver.alerts import rfc3339
from receiver.breaker import State
from receiver.config import Settings
from receiver.ingest import ingest
from receiver.schemas import NotificationSchema
from receiver.store import ScopeStore
from tests.conftest import T0, isolate_alert

SHIPPED = Settings("w" * 16, "a" * 16, "d" * 16, max_isolated_percent=100)
DAY = 86400.0


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "reason"),
    [
        ("0001-01-01T00:00:01Z", None, "startsAt more than 2.592e+06s before"),
        ("9999-12-31T23:59:59Z", None, "startsAt more than 600s ahead"),
        (rfc3339(T0 - 31 * DAY), None, "startsAt more than 2.592e+06s before"),
        (rfc3339(T0 + 660), None, "startsAt more than 600s ahead"),
        (rfc3339(T0 - 60), rfc3339(T0 + 3600), "endsAt more than 600s ahead"),
    ],
    ids=["year-1", "year-9999", "31-days-old", "11-minutes-ahead", "resolved-in-an-hour"],
)
def test_an_alert_out_of_the_window_is_rejected_alone(
    store: ScopeStore, starts_at: str, ends_at: str | None, reason: str
) -> None:
    """Beside a valid alert of another tenant: that one is applied, this one rejected."""
    body = isolate_alert("good", starts_at=rfc3339(T0 - 60))
    bad = isolate_alert(
        "bad", "resolved" if ends_at else "firing", starts_at, ends_at or "0001-01-01T00:00:00Z"
    )
    body["alerts"] += bad["alerts"]
    result = ingest(NotificationSchema().load(body), store, SHIPPED, {}, T0)
    assert result.accepted == 1
    assert [r["fingerprint"] for r in result.rejected] == ["fp-bad"]
    assert reason in result.rejected[0]["reason"]
    states = store.read({"good": [], "bad": []}, T0)
    assert (states["good"].breaker.state, states["bad"].breaker.state) == (State.OPEN, State.CLOSED)


@pytest.mark.parametrize("starts_at", [T0 - 29 * DAY, T0 + 540])
def test_an_alert_inside_the_window_is_applied(store: ScopeStore, starts_at: float) -> None:
    """29 days back or 9 minutes ahead (a skewed clock) is still an alert."""
    body = isolate_alert("acme", starts_at=rfc3339(starts_at))
    result = ingest(NotificationSchema().load(body), store, SHIPPED, {}, T0)
    assert (result.accepted, result.rejected) == (1, [])
