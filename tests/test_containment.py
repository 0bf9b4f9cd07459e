"""A failure with a shared cause, through the pipeline: the noisy
neighbour is isolated past the guard's cap, victims are held back or released, and
the platform incident says what happened. On fakeredis and real Redis."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
import redis

from receiver.alerts import rfc3339
from receiver.breaker import State, TransitionEvent
from receiver.config import BreakerSettings, Settings
from receiver.incidents import Incident, Priority, Scope
from receiver.ingest import ingest
from receiver.pipeline import Alerts, Tick, apply
from receiver.postmortem import render
from receiver.schemas import NotificationSchema
from receiver.services import build_services
from receiver.tenants import Tier
from tests.conftest import T0, isolate_alert

S = BreakerSettings()
SETTINGS = Settings("w" * 16, "a" * 16, "d" * 16, breaker=S)
TENANTS = [f"t{i}" for i in range(10)]
REGISTRY = {tenant: Tier.SILVER for tenant in TENANTS}
load = NotificationSchema().load


def stamp(offset_s: float) -> str:
    """The RFC 3339 time `offset_s` after T0 (2027-01-15T08:00:00Z)."""
    return rfc3339(T0 + offset_s)


def noisy(tenant: str, status: str = "firing", at: float = 0, **annotations: str) -> dict[str, Any]:
    body = isolate_alert(
        tenant, status, stamp(at), alertname="TenantNoisyNeighbor", cause="noisy_neighbor"
    )
    body["alerts"][0]["fingerprint"] = f"nn-{tenant}"
    body["alerts"][0]["annotations"] = {
        "share": "0.6711",
        "baseline_share": "0.02",
        "growth": "99.5",
        **annotations,
    }
    return body


def victim(tenant: str, status: str = "firing", at: float = 0) -> dict[str, Any]:
    body = isolate_alert(tenant, status, stamp(at), alertname="TenantSharedFailure", cause="shared")
    alert = body["alerts"][0]
    del alert["labels"]["action"]
    alert["labels"]["severity"] = "warning"
    alert["fingerprint"] = f"sf-{tenant}"
    return body


def platform(status: str = "firing", at: float = 0, ends: float | None = None) -> dict[str, Any]:
    body = copy.deepcopy(isolate_alert("x", status, stamp(at)))
    alert = body["alerts"][0]
    alert["labels"] = {"alertname": "PlatformErrorRateHigh", "scope": "platform"}
    alert["fingerprint"] = "platform"
    if ends is not None:
        alert["endsAt"] = stamp(ends)
    body["groupKey"] = '{}:{alertname="PlatformErrorRateHigh"}'
    return body


class Pipeline:
    """Deliveries through ingest and the board, as the webhook applies them."""

    def __init__(self, client: redis.Redis, settings: Settings = SETTINGS) -> None:
        self.services = build_services(settings, client=client, registry=REGISTRY)
        self.store = self.services.store
        self.incidents = self.services.incidents
        self.store.add_known(TENANTS, T0)

    def deliver(self, body: dict[str, Any], at: float) -> list[TransitionEvent]:
        return apply(self.services, Alerts(load(body)), T0 + at).transitions

    def sweep(self, at: float) -> list[TransitionEvent]:
        return apply(self.services, Tick(), T0 + at).transitions

    def state(self, tenant: str) -> State:
        return self.store.read({tenant: []}, T0)[tenant].breaker.state

    def platform_incident(self) -> Incident:
        ids = self.incidents.ids_since(T0 - 1)
        found = [i for i in self.incidents.get_many(ids).values() if i.scope is Scope.PLATFORM]
        assert len(found) == 1, found
        return self.incidents.get_many([found[0].id], timeline=True)[found[0].id]


@pytest.fixture
def pipe(redis_client: redis.Redis, settings: Settings) -> Pipeline:
    return Pipeline(redis_client, replace(SETTINGS, notify_redis_url=settings.notify_redis_url))


def test_victims_are_held_back_while_the_platform_fails_broadly(pipe: Pipeline) -> None:
    """With PlatformErrorRateHigh firing, no TenantErrorRateHigh trips: one platform P0."""
    pipe.deliver(platform(), 0)
    for tenant in TENANTS[:6]:
        events = pipe.deliver(isolate_alert(tenant), 1)
        assert [e.transition.suppressed for e in events] == [True]
        assert "shared cause firing (PlatformErrorRateHigh)" in events[0].transition.reason
    assert all(pipe.state(tenant) is State.CLOSED for tenant in TENANTS)
    assert pipe.store.slots.isolated() == set()
    incident = pipe.platform_incident()
    assert incident.priority is Priority.P0
    assert set(incident.suppressed) == set(TENANTS[:6])


def test_victims_isolated_before_the_cause_was_known_are_released(pipe: Pipeline) -> None:
    """Tenants opened seconds before the shared cause arrived are closed again, with why."""
    pipe.deliver(isolate_alert("t1", starts_at=stamp(0)), 0)
    pipe.deliver(isolate_alert("t2", starts_at=stamp(0)), 1)
    assert pipe.store.slots.isolated() == {"t1", "t2"}
    events = pipe.deliver(platform(at=5), 5)
    released = {e.tenant_id: e.transition for e in events}
    assert set(released) == {"t1", "t2"}
    assert all(t.to_state is State.CLOSED for t in released.values())
    assert released["t1"].reason.startswith("released: shared cause firing (PlatformErrorRateHigh)")
    assert pipe.state("t1") is State.CLOSED and pipe.state("t2") is State.CLOSED
    assert pipe.store.slots.isolated() == set()
    logged = pipe.store.transitions("t1", 10)[0]
    assert (logged.to_state, logged.reason) == (State.CLOSED, released["t1"].reason)


def test_a_tenant_isolated_long_before_the_cause_stays_isolated(pipe: Pipeline) -> None:
    """Only isolations within the release window before the cause are a victim's."""
    pipe.deliver(isolate_alert("t1", starts_at=stamp(0)), 0)
    pipe.deliver(platform(at=200), 200)
    assert pipe.state("t1") is State.OPEN


def test_the_noisy_neighbour_is_isolated_past_the_guards_cap(pipe: Pipeline) -> None:
    """Cap 2 of 10 already held: the culprit's alert still opens its breaker."""
    pipe.deliver(isolate_alert("t1", starts_at=stamp(0)), 0)
    pipe.deliver(isolate_alert("t2", starts_at=stamp(0)), 0)
    events = pipe.deliver(noisy("t9", at=100), 100)
    culprit = [e.transition for e in events if e.tenant_id == "t9"]
    assert [(t.to_state, t.suppressed) for t in culprit] == [(State.OPEN, False)]
    assert "noisy-neighbour alert nn-t9 firing" in culprit[0].reason
    # Isolated before the release window: left on probation, holding their slots.
    assert (pipe.state("t1"), pipe.state("t2")) == (State.HALF_OPEN, State.HALF_OPEN)
    assert pipe.store.slots.isolated() == {"t1", "t2", "t9"}


def test_the_culprits_own_held_trip_gives_way_to_its_noisy_neighbour_alert(
    pipe: Pipeline,
) -> None:
    """A culprit whose error alert was held as a victim's is isolated by its own alert."""
    pipe.deliver(platform(), 0)
    pipe.deliver(isolate_alert("t3"), 1)
    assert pipe.state("t3") is State.CLOSED
    pipe.deliver(noisy("t3", at=2), 2)
    assert pipe.state("t3") is State.OPEN


def test_the_culprit_re_opens_with_a_doubled_timeout_if_its_probes_saturate_again(
    pipe: Pipeline,
) -> None:
    """Half open, a new noisy-neighbour alert re-opens it; the next open lasts twice as long."""
    pipe.deliver(noisy("t3", at=0), 0)
    pipe.deliver(noisy("t3", "resolved", at=0), 50)
    assert [e.transition.to_state for e in pipe.sweep(61)] == [State.HALF_OPEN]
    events = pipe.deliver(noisy("t3", at=70), 70)
    assert [e.transition.to_state for e in events] == [State.OPEN]
    snapshot = pipe.store.read({"t3": []}, T0 + 70)["t3"]
    assert snapshot.breaker.open_count == 2
    assert pipe.sweep(70 + 61) == []  # 60s would be the first open's timeout
    assert [e.transition.to_state for e in pipe.sweep(70 + 121)] == [State.HALF_OPEN]


def test_held_trips_wait_for_the_shared_cause_to_settle(pipe: Pipeline) -> None:
    """No retry of a victim's held trip while the cause fires, nor until it settled."""
    pipe.deliver(platform(), 0)
    pipe.deliver(isolate_alert("t4"), 1)
    assert pipe.sweep(10) == []
    pipe.deliver(platform("resolved", at=0, ends=40), 40)
    assert pipe.sweep(45) == []
    assert pipe.state("t4") is State.CLOSED
    # Still firing a minute after the cause ended: the tenant fails on its own.
    events = pipe.sweep(101)
    assert [(e.tenant_id, e.transition.to_state) for e in events] == [("t4", State.OPEN)]


def test_a_late_copy_of_a_resolved_cause_does_not_bring_it_back(pipe: Pipeline) -> None:
    """The firing state delivered again after its resolution holds nobody back."""
    pipe.deliver(platform(), 0)
    pipe.deliver(platform("resolved", at=0, ends=30), 30)
    pipe.deliver(platform(), 31)
    assert pipe.store.causes.read(T0 + 100).active == []
    events = pipe.deliver(isolate_alert("t5", starts_at=stamp(100)), 100)
    assert [(e.transition.to_state, e.transition.suppressed) for e in events] == [
        (State.OPEN, False)
    ]


def test_the_platform_incident_names_the_culprit_and_its_containment(pipe: Pipeline) -> None:
    """Culprit with figures, victims, 'contained by isolating', and the postmortem says so."""
    pipe.deliver(platform(at=0), 0)
    for tenant in TENANTS[:4]:
        pipe.deliver(victim(tenant, at=0), 1)
    pipe.deliver(noisy("t9", at=0), 2)
    incident = pipe.platform_incident()
    assert incident.title == "noisy neighbour: t9 exhausting a shared resource"
    assert incident.culprits == {"t9": {"share": 0.6711, "baseline_share": 0.02, "growth": 99.5}}
    assert set(incident.victims) == set(TENANTS[:4])
    assert incident.contained_at is None
    pipe.deliver(platform("resolved", at=0, ends=40), 40)
    for tenant in TENANTS[:3]:
        pipe.deliver(victim(tenant, "resolved", at=0), 41)
    assert pipe.platform_incident().contained_at is None  # t3 still failing
    pipe.deliver(victim("t3", "resolved", at=0), 42)
    incident = pipe.platform_incident()
    assert incident.contained_at == T0 + 42
    assert incident.is_open  # the culprit is still isolated
    contained = [e.message for e in incident.timeline if e.kind == "contained"]
    assert contained == ["contained by isolating t9: 4 victims recovered, down 42s"]
    assert incident.victims_cost_per_hour == 4 * SETTINGS.tier_hourly_cost["silver"]
    draft = render(incident, T0 + 3600)
    assert "t9 (67% of the shared load, baseline 2%, 100x relative growth)" in draft
    assert "contained by isolating t9" in draft


def test_a_shared_failure_without_a_culprit_isolates_nobody(pipe: Pipeline) -> None:
    """Everyone failing with no share change: one platform P0, nobody isolated, all back."""
    pipe.deliver(platform(at=0), 0)
    for tenant in TENANTS:
        pipe.deliver(victim(tenant, at=0), 1)
        pipe.deliver(isolate_alert(tenant), 1)  # an older rule set still sends these
    incident = pipe.platform_incident()
    assert (incident.priority, incident.culprits, len(incident.victims)) == (Priority.P0, {}, 10)
    assert pipe.store.slots.isolated() == set()
    pipe.deliver(platform("resolved", at=0, ends=30), 30)
    for tenant in TENANTS:
        pipe.deliver(victim(tenant, "resolved", at=0), 31)
        pipe.deliver(isolate_alert(tenant, "resolved", ends_at=stamp(31)), 31)
    pipe.sweep(32)
    assert not pipe.platform_incident().is_open
    assert all(pipe.state(tenant) is State.CLOSED for tenant in TENANTS)
    assert all(pipe.store.transitions(t, 10)[0].suppressed for t in TENANTS)


def test_a_delivery_retried_after_a_crash_between_commits_brings_the_incident_up(
    pipe: Pipeline,
) -> None:
    """The breakers committed, then the process died before the board: the retried
    delivery is all duplicates, yet the incident gets the isolation, its time, its
    timeline entry and the 'tenant isolated' notice."""
    body = load(isolate_alert("t1"))
    ingest(body, pipe.store, SETTINGS, REGISTRY, T0)  # the breaker commit, then the crash
    assert pipe.state("t1") is State.OPEN
    retried = apply(pipe.services, Alerts(body), T0 + 10)
    assert (retried.transitions, retried.ingest and retried.ingest.duplicates) == ([], 1)
    assert ("tenant_isolated", "t1") in {(n.kind, n.tenant_id) for n in retried.notices}
    (incident,) = pipe.incidents.get_many(pipe.incidents.ids_since(T0 - 1), timeline=True).values()
    assert incident.isolated_at == {"t1": T0}
    assert any("taken from the committed breaker" in e.message for e in incident.timeline)


def test_a_culprit_whose_alert_resolved_first_is_not_released_as_a_victim(
    pipe: Pipeline,
) -> None:
    """The culprit's alert resolves while PlatformErrorRateHigh still fires: the sweep's
    release of victims leaves the culprit isolated."""
    pipe.deliver(platform(at=0), 0)
    pipe.deliver(noisy("t9", at=1), 2)
    pipe.deliver(noisy("t9", "resolved", at=1), 40)
    pipe.sweep(45)
    assert pipe.state("t9") is State.OPEN
    assert all(not t.reason.startswith("released") for t in pipe.store.transitions("t9", 10))
