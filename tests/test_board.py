"""The incident board's rules without Redis: a `Draft` changed by signals."""

from __future__ import annotations

from dataclasses import replace

from receiver.board import SHARED_FAILURE, Draft, Signals, apply_signals, settle
from receiver.breaker import State, Transition, TransitionEvent
from receiver.config import Settings
from receiver.incidents import Priority, Scope
from receiver.schemas import NotificationSchema
from receiver.tenants import Tier
from tests.conftest import T0, isolate_alert

SETTINGS = Settings("w" * 16, "a" * 16, "d" * 16)


def draft(at: float = T0) -> Draft:
    return Draft({}, {}, frozenset(), SETTINGS, at)


def firing(*tenants: str) -> Signals:
    alerts = []
    for tenant in tenants:
        alert = NotificationSchema().load(isolate_alert(tenant)).alerts[0]
        alerts.append((tenant, alert))
    return Signals(
        alerts=alerts,
        fresh={a.delivery_key for _, a in alerts},
        tiers={t: Tier.SILVER for t in tenants},
    )


def test_failing_tenants_share_one_tenant_incident_that_rises_with_their_number() -> None:
    """Five silver tenants in one delivery: one tenant incident, P1, titled by count."""
    d = draft()
    apply_signals(d, firing(*(f"t{i}" for i in range(5))), isolated=set())
    (incident,) = d.open.values()
    assert (incident.scope, incident.priority) == (Scope.TENANT, Priority.P1)
    assert incident.title == "5 tenants failing"
    assert [n.kind for n in d.notices].count("tenant_joined") == 5


def test_held_trips_open_a_platform_incident_instead() -> None:
    """A tenant whose trip was held back joins the platform P0, listed as suppressed."""
    d = draft()
    signals = firing("t1")
    signals.held = {"t1": "shared cause firing"}
    apply_signals(d, signals, isolated=set())
    (incident,) = d.open.values()
    assert (incident.scope, incident.title, list(incident.suppressed)) == (
        Scope.PLATFORM,
        SHARED_FAILURE,
        ["t1"],
    )


def test_a_replayed_alert_of_a_tenant_not_isolated_is_left_off_the_board() -> None:
    """A delivery key the breakers did not apply now counts only while isolated."""
    d = draft()
    signals = firing("t1")
    signals.fresh = set()
    apply_signals(d, signals, isolated=set())
    assert d.open == {} and d.notices == []


def test_an_incident_settles_once_quiet() -> None:
    """Resolved alerts and nobody isolated: resolved, with a notice."""
    d = draft()
    apply_signals(d, firing("t1"), isolated={"t1"})
    (incident,) = d.open.values()
    for alert in list(incident.alerts.values()):
        incident.alerts[alert.fingerprint] = replace(alert, status="resolved")
    closed = TransitionEvent("t1", Transition(State.HALF_OPEN, State.CLOSED, T0 + 120, "ok"))
    later = Draft({}, dict(d.open), frozenset(), SETTINGS, T0 + 120)
    apply_signals(later, Signals(transitions=[closed]), isolated=set())
    settle(later, set(), candidates=list(later.open))
    assert not incident.is_open
    assert "resolved" in [n.kind for n in later.notices]
