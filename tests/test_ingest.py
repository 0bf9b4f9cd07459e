"""Applying notifications to breakers through the store, on fakeredis and real Redis."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from receiver.alerts import PLATFORM_SCOPE
from receiver.breaker import Action, State
from receiver.config import BreakerSettings, Settings
from receiver.correlate import all_tiers
from receiver.followups import LOGGED_TRANSITIONS, log_transitions
from receiver.ingest import ingest
from receiver.operator import act
from receiver.schemas import NotificationSchema
from receiver.store import ScopeStore
from receiver.store.commit import commit_scopes
from receiver.store.scope_scripts import PART_SCOPES
from receiver.tenants import Tier
from receiver.upkeep import sweep
from tests.conftest import ANY_ALERT_TIME_S, T0, isolate_alert, payload

S = BreakerSettings()
FULL = Settings(
    "w" * 16,
    "a" * 16,
    "d" * 16,
    breaker=S,
    max_isolated_percent=100,
    max_alert_age_s=ANY_ALERT_TIME_S,
    max_alert_future_s=ANY_ALERT_TIME_S,
)
load = NotificationSchema().load


def state(store: ScopeStore, tenant: str) -> State:
    return store.read({tenant: []}, T0)[tenant].breaker.state


def test_firing_isolation_alert_opens_the_breaker(store: ScopeStore) -> None:
    """One firing TenantErrorRateHigh opens that tenant's breaker and nobody else's."""
    result = ingest(load(isolate_alert("acme")), store, FULL, {}, T0)
    assert (result.accepted, result.duplicates) == (1, 0)
    assert [(e.tenant_id, e.transition.to_state) for e in result.transitions] == [
        ("acme", State.OPEN)
    ]
    assert state(store, "acme") is State.OPEN
    assert state(store, "globex") is State.CLOSED


def test_repeated_delivery_changes_nothing(store: ScopeStore) -> None:
    """The same alert state delivered again is a duplicate: no count, no transition."""
    body = load(isolate_alert("acme"))
    ingest(body, store, FULL, {}, T0)
    again = ingest(body, store, FULL, {}, T0 + 1)
    assert (again.accepted, again.duplicates, again.transitions) == (0, 1, [])
    assert len(store.transitions("acme", 10)) == 1


def test_duplicate_firing_while_half_open_does_not_reopen(store: ScopeStore) -> None:
    """An HA peer's late copy of the original firing alert must not re-isolate a probing tenant."""
    body = load(isolate_alert("acme"))
    ingest(body, store, FULL, {}, T0)
    ingest(load(isolate_alert("acme", status="resolved")), store, FULL, {}, T0 + 30)
    result = ingest(body, store, FULL, {}, T0 + 61)
    assert result.duplicates == 1
    assert [e.transition.to_state for e in result.transitions] == [State.HALF_OPEN]
    assert state(store, "acme") is State.HALF_OPEN


def test_new_firing_while_half_open_reopens(store: ScopeStore) -> None:
    """A fresh firing (new startsAt) during probation isolates again."""
    ingest(load(isolate_alert("acme")), store, FULL, {}, T0)
    ingest(load(isolate_alert("acme", status="resolved")), store, FULL, {}, T0 + 30)
    result = ingest(
        load(isolate_alert("acme", starts_at="2027-01-15T08:01:05Z")), store, FULL, {}, T0 + 65
    )
    assert [e.transition.to_state for e in result.transitions] == [State.HALF_OPEN, State.OPEN]
    snapshot = store.read({"acme": []}, T0)["acme"]
    assert snapshot.breaker.state is State.OPEN and snapshot.breaker.open_count == 2


def test_full_cycle_is_recorded_in_order(store: ScopeStore) -> None:
    """open -> half_open -> closed lands in the capped log, newest first."""
    ingest(load(isolate_alert("acme")), store, FULL, {}, T0)
    ingest(load(isolate_alert("acme", status="resolved")), store, FULL, {}, T0 + 20)
    assert sweep(store, S, T0 + 60) and state(store, "acme") is State.HALF_OPEN
    assert sweep(store, S, T0 + 120) and state(store, "acme") is State.CLOSED
    assert [(t.from_state, t.to_state) for t in store.transitions("acme", 10)] == [
        (State.HALF_OPEN, State.CLOSED),
        (State.OPEN, State.HALF_OPEN),
        (State.CLOSED, State.OPEN),
    ]


def test_sweep_records_each_due_transition_once(store: ScopeStore) -> None:
    """A second sweep at the same time finds nothing to do."""
    ingest(load(isolate_alert("acme")), store, FULL, {}, T0)
    assert len(sweep(store, S, T0 + 61)) == 1
    assert sweep(store, S, T0 + 61) == []


def test_alerts_without_tenant_are_stored_not_isolating(store: ScopeStore) -> None:
    """Watchdog and platform alerts are kept and acknowledged; no breaker moves."""
    result = ingest(load(payload("watchdog-firing.json")), store, FULL, {}, T0)
    assert result.watchdog and result.accepted == 1 and result.transitions == []
    assert store.watchdog_last_seen() == T0
    assert "448881ef475b9b26" in store.alerts(PLATFORM_SCOPE)
    assert store.known_tenants(0, 10) == ([], 0)


def test_tenant_alert_without_isolate_action_does_not_trip(store: ScopeStore) -> None:
    """A paging alert naming a tenant is stored on the tenant but does not isolate it."""
    body = isolate_alert("acme")
    body["alerts"][0]["labels"]["action"] = "page"
    result = ingest(load(body), store, FULL, {}, T0)
    assert result.accepted == 1 and result.transitions == []
    assert state(store, "acme") is State.CLOSED
    assert "fp-acme" in store.alerts("acme")


def test_grouped_payload_isolates_each_tenant(store: ScopeStore) -> None:
    """The captured grouped payload (truncated) isolates the two tenants it carries."""
    result = ingest(load(payload("grouped-truncated-firing.json")), store, FULL, {}, T0)
    assert sorted(e.tenant_id for e in result.transitions) == ["t1", "t2"]
    resolved = ingest(load(payload("grouped-truncated-resolved.json")), store, FULL, {}, T0 + 30)
    assert resolved.accepted == 2 and resolved.transitions == []
    assert state(store, "t1") is State.OPEN


@pytest.mark.parametrize("tenant_id", ["a{b}", "x:y", "*", "new\nline", "ü", "", "a" * 65])
def test_invalid_tenant_ids_are_rejected_per_alert(store: ScopeStore, tenant_id: str) -> None:
    """A bad tenant_id label rejects that alert only; it never reaches a Redis key."""
    body = isolate_alert("acme")
    bad = isolate_alert(tenant_id)["alerts"][0]
    bad["fingerprint"] = "fp-bad"
    body["alerts"].append(bad)
    result = ingest(load(body), store, FULL, {}, T0)
    assert result.accepted == 1 and len(result.rejected) == 1
    assert all("{" + tenant_id + "}" not in key for key in store.client.keys("*"))


def test_operator_actions_commit_once(store: ScopeStore) -> None:
    """force_open, then force_close: two transitions; repeating one is a no-op."""
    assert len(act(store, "acme", Action.FORCE_OPEN, "drill", S, T0)) == 1
    assert act(store, "acme", Action.FORCE_OPEN, "drill", S, T0) == []
    assert state(store, "acme") is State.FORCED_OPEN
    assert len(act(store, "acme", Action.FORCE_CLOSE, "drill over", S, T0 + 5)) == 1
    assert state(store, "acme") is State.CLOSED


def test_transition_log_is_capped(redis_client) -> None:  # type: ignore[no-untyped-def]
    """The per-tenant log keeps only the newest `log_cap` entries."""
    store = ScopeStore(redis_client, log_cap=3, seen_ttl_s=3600)
    for i in range(5):
        act(store, "acme", Action.FORCE_OPEN, f"open {i}", S, T0 + 2 * i)
        act(store, "acme", Action.FORCE_CLOSE, f"close {i}", S, T0 + 2 * i + 1)
    log = store.transitions("acme", 100)
    assert [t.reason for t in log] == ["close 4", "open 4", "close 3"]


def test_idempotency_keys_expire(redis_client) -> None:  # type: ignore[no-untyped-def]
    """After the idempotency TTL a delivery counts again, and old keys are pruned."""
    store = ScopeStore(redis_client, log_cap=10, seen_ttl_s=100)
    body = load(isolate_alert("acme", status="resolved"))
    assert ingest(body, store, FULL, {}, T0).accepted == 1
    assert ingest(body, store, FULL, {}, T0 + 50).duplicates == 1
    assert ingest(body, store, FULL, {}, T0 + 101).accepted == 1
    assert redis_client.zcard("br:{acme}:seen") == 1


def test_refire_with_the_same_start_counts_after_the_grace(store: ScopeStore) -> None:
    """firing -> resolved -> the same firing state again: a late copy within a minute is a
    duplicate, later it is a real re-fire (Prometheus re-sent an alert that had ended)."""
    firing = load(isolate_alert("acme"))
    ingest(firing, store, FULL, {}, T0)
    ingest(load(isolate_alert("acme", status="resolved")), store, FULL, {}, T0 + 20)
    assert ingest(firing, store, FULL, {}, T0 + 30).duplicates == 1
    again = ingest(firing, store, FULL, {}, T0 + 100)
    assert again.accepted == 1
    assert store.read({"acme": []}, T0 + 100)["acme"].breaker.firing == frozenset({"fp-acme"})


def _many(tenants: list[str], **labels: str) -> dict[str, object]:
    """One payload with an isolation alert per tenant (Alertmanager grouping by alertname)."""
    body = isolate_alert(tenants[0])
    template = body["alerts"][0]
    body["alerts"] = [
        {
            **template,
            "labels": {**template["labels"], "tenant_id": tenant, **labels},
            "fingerprint": f"fp-{tenant}",
        }
        for tenant in tenants
    ]
    return body


def test_a_large_batch_logs_each_transition_up_to_a_cap_then_a_summary(
    store: ScopeStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Sixty tenants tripping at once: fifty lines, one summary line, sixty stored logs."""
    tenants = [f"t{i:02d}" for i in range(LOGGED_TRANSITIONS + 10)]
    result = ingest(load(_many(tenants)), store, FULL, {}, T0)
    with caplog.at_level(logging.INFO, "receiver.followups"):
        log_transitions(result.transitions)
    assert len(result.transitions) == len(tenants)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("breaker closed -> open" in line for line in lines) == LOGGED_TRANSITIONS
    assert "10 more breaker transitions in this batch: closed -> open x10" in lines
    assert all(len(store.transitions(tenant, 10)) == 1 for tenant in tenants)


def test_many_platform_alerts_in_one_payload_are_all_stored(store: ScopeStore) -> None:
    """More alert records in one scope than one Redis call takes: all are written."""
    body = payload("watchdog-firing.json")
    template = body["alerts"][0]
    body["alerts"] = [
        {
            **template,
            "labels": {"alertname": "PlatformErrorRateHigh", "shard": str(i)},
            "fingerprint": f"fp{i}",
        }
        for i in range(1200)
    ]
    result = ingest(load(body), store, FULL, {}, T0)
    assert result.accepted == 1200
    assert len(store.alerts(PLATFORM_SCOPE)) == 1200


def test_tiers_resolved_by_a_delivery_match_a_fresh_read(store: ScopeStore) -> None:
    """The cost comparison reuses the tiers a delivery resolved instead of reading them
    again; they must be exactly what reading them gives."""
    registry = {"reg": Tier.PLATINUM, "t1": Tier.GOLD}
    store.set_tier("api", "silver", T0)
    store.set_tier("t2", "platinum", T0)
    result = ingest(load(_many(["t1", "t2", "t3"], tier="gold")), store, FULL, registry, T0)
    store.add_known(["reg"], T0)
    assert set(result.tiers) == {"t1", "t2", "t3"}
    fresh = all_tiers(store, registry)
    assert all_tiers(store, registry, result.tiers) == fresh
    assert fresh == {
        "reg": Tier.PLATINUM,
        "api": Tier.SILVER,
        "t1": Tier.GOLD,
        "t2": Tier.PLATINUM,
        "t3": Tier.GOLD,
    }


def test_a_stale_read_does_not_free_a_slot_another_process_just_took(store: ScopeStore) -> None:
    """The sweep read `acme` closed; before it finished, a delivery opened `acme`.
    Leaving `acme` unchanged must not take its slot away."""
    stale = store.read({"acme": []}, T0)
    ingest(load(isolate_alert("acme")), store, FULL, {}, T0)
    assert store.slots.isolated() == {"acme"}
    commit_scopes(store, {"acme": []}, lambda snapshot: (None, None), T0, first_read=stale)
    assert store.slots.isolated() == {"acme"}


def test_a_slot_taken_and_not_used_is_given_back(store: ScopeStore) -> None:
    granted = store.slots.acquire("acme", 100, T0)
    assert granted.granted and store.slots.isolated() == {"acme"}
    commit_scopes(store, {"acme": []}, lambda snapshot: (None, None), T0, taken={"acme": granted})
    assert store.slots.isolated() == set()


def test_the_sweep_repairs_slots_that_disagree_with_breakers_within_one_sweep(
    store: ScopeStore,
) -> None:
    """A slot left by a process that died before committing or freeing it, and one lost
    from the set, are repaired by the sweep that sees the disagreement hold across its
    confirming re-read; later sweeps leave them be."""
    ingest(load(isolate_alert("open-one")), store, FULL, {}, T0)
    store.add_known(["ghost"], T0)
    store.client.sadd("br:{_global}:isolated", "ghost")
    store.client.srem("br:{_global}:isolated", "open-one")
    sweep(store, S, T0 + 1, max_isolated_percent=100, confirm_after_s=0)
    assert store.slots.isolated() == {"open-one"}
    sweep(store, S, T0 + 2, max_isolated_percent=100, confirm_after_s=0)
    assert store.slots.isolated() == {"open-one"}


def test_a_commit_racing_its_slot_update_is_not_repaired(
    store: ScopeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A breaker that moves between the sweep's two reads is a live process's commit:
    its slot is left to that process."""
    store.add_known(["racing"], T0)
    store.client.sadd("br:{_global}:isolated", "racing")  # slot taken, commit in flight

    def the_commit_lands(_: float) -> None:
        ingest(load(isolate_alert("racing")), store, FULL, {}, T0 + 1)

    monkeypatch.setattr("receiver.upkeep.time.sleep", the_commit_lands)
    sweep(store, S, T0 + 1, max_isolated_percent=100)
    assert store.slots.isolated() == {"racing"}
    assert state(store, "racing") is State.OPEN


def test_resolved_alert_records_go_after_the_idempotency_ttl(redis_client) -> None:  # type: ignore[no-untyped-def]
    """A resolved alert's record is forgotten once its delivery keys are, the next time
    its scope changes; firing records stay, and an alert that fires again is kept."""
    store = ScopeStore(redis_client, log_cap=10, seen_ttl_s=100)
    ingest(load(isolate_alert("acme", action="page")), store, FULL, {}, T0)
    for name in ("gone", "back"):
        body = isolate_alert("acme", status="resolved", action="page")
        body["alerts"][0]["fingerprint"] = f"fp-{name}"
        ingest(load(body), store, FULL, {}, T0)
    refire = isolate_alert("acme", starts_at="2027-01-15T09:00:00Z", action="page")
    refire["alerts"][0]["fingerprint"] = "fp-back"
    ingest(load(refire), store, FULL, {}, T0 + 50)
    assert set(store.alerts("acme")) == {"fp-acme", "fp-gone", "fp-back"}
    later = isolate_alert("acme", action="page")
    later["alerts"][0]["fingerprint"] = "fp-later"
    ingest(load(later), store, FULL, {}, T0 + 101)
    assert set(store.alerts("acme")) == {"fp-acme", "fp-back", "fp-later"}
    assert redis_client.zcard("br:{acme}:resolved") == 0


def test_a_repeat_delivery_puts_a_lost_index_entry_back(store: ScopeStore) -> None:
    body = load(isolate_alert("acme"))
    ingest(body, store, FULL, {}, T0)
    store.client.zrem("br:{_global}:tenants", "acme")
    assert ingest(body, store, FULL, {}, T0 + 1).duplicates == 1
    assert store.known_tenants(0, 10) == (["acme"], 1)


@pytest.mark.parametrize("resolved_first", [False, True])
def test_one_alert_firing_and_resolved_in_one_payload_applies_the_later_state(
    store: ScopeStore, resolved_first: bool
) -> None:
    """Same fingerprint twice: the resolution (later by time) is applied whatever the
    order, and the breaker and the stored record agree."""
    firing = isolate_alert("acme")["alerts"][0]
    resolved = isolate_alert("acme", status="resolved")["alerts"][0]
    body = isolate_alert("acme")
    body["alerts"] = [resolved, firing] if resolved_first else [firing, resolved]
    result = ingest(load(body), store, FULL, {}, T0 + 600)
    assert (result.accepted, result.duplicates) == (1, 1)
    snapshot = store.read({"acme": []}, T0 + 600)["acme"]
    assert snapshot.breaker.firing == frozenset()
    assert store.alerts("acme")["fp-acme"]["status"] == "resolved"


def test_a_re_fire_after_its_resolution_in_one_payload_is_firing(store: ScopeStore) -> None:
    """A resolved episode and a later firing one of the same alert: firing wins."""
    old = isolate_alert("acme", status="resolved")["alerts"][0]
    new = isolate_alert("acme", starts_at="2027-01-15T08:10:00.000Z")["alerts"][0]
    body = isolate_alert("acme")
    body["alerts"] = [new, old]
    ingest(load(body), store, FULL, {}, T0 + 700)
    assert store.read({"acme": []}, T0 + 700)["acme"].breaker.state is State.OPEN
    assert store.alerts("acme")["fp-acme"]["status"] == "firing"


def test_a_trip_asks_the_commit_for_its_slot_until_the_guard_looks_full(
    store: ScopeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 known tenants at 20%: two slots. On one Redis the first two trips take theirs
    in their commits; the third finds the guard full when read, so it is held back as
    read, without asking, and commits once. A cluster always asks first."""
    guarded = replace(FULL, max_isolated_percent=20)
    store.add_known([f"t{i}" for i in range(10)], T0)
    asked: list[list[str]] = []
    commits: list[int] = []
    acquire, commit = store.slots.acquire_many, store.committing

    def asking(tenants: Any, *args: Any) -> Any:
        asked.append(list(tenants))
        return acquire(tenants, *args)

    def committing(changes: Any, *args: Any) -> Any:
        outcomes = list(commit(changes, *args))
        commits.append(len(outcomes))
        return iter(outcomes)

    monkeypatch.setattr(store.slots, "acquire_many", asking)
    monkeypatch.setattr(store, "committing", committing)
    results = [ingest(load(isolate_alert(t)), store, guarded, {}, T0) for t in ("t1", "t2", "t3")]
    assert [list(r.held) for r in results] == [[], [], ["t3"]]
    assert "2 of 10 known tenants already isolated (cap 2" in results[2].held["t3"]
    assert store.slots.isolated() == {"t1", "t2"}
    assert state(store, "t1") is State.OPEN and state(store, "t3") is State.CLOSED
    if store.commits_slots:
        assert asked == [] and commits == [1, 1, 1]
    else:
        assert asked == [["t1"], ["t2"], ["t3"]] and commits == [1, 1, 1]


def test_trips_past_the_room_left_ask_for_their_slots_first(
    store: ScopeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 known tenants at 20%, one isolated: one slot left for two trips in one
    delivery. They ask for their slots together first, first come first served, and
    the one refused is held back, each scope committed once."""
    guarded = replace(FULL, max_isolated_percent=20)
    store.add_known([f"t{i}" for i in range(10)], T0)
    ingest(load(isolate_alert("t0")), store, guarded, {}, T0)
    asked: list[list[str]] = []
    acquire = store.slots.acquire_many

    def asking(tenants: Any, *args: Any) -> Any:
        asked.append(list(tenants))
        return acquire(tenants, *args)

    monkeypatch.setattr(store.slots, "acquire_many", asking)
    body = isolate_alert("t1")
    body["alerts"] += isolate_alert("t2")["alerts"]
    result = ingest(load(body), store, guarded, {}, T0)
    assert asked == [["t1", "t2"]]
    assert list(result.held) == ["t2"]
    assert store.slots.isolated() == {"t0", "t1"}
    assert state(store, "t1") is State.OPEN and state(store, "t2") is State.CLOSED


def _crowd(count: int, prefix: str) -> dict[str, Any]:
    """One payload of `count` firing isolation alerts, one tenant each."""
    body = isolate_alert(f"{prefix}0")
    template = body["alerts"][0]
    body["alerts"] = [
        {**template, "labels": {**template["labels"], "tenant_id": f"{prefix}{i}"}}
        for i in range(count)
    ]
    return body


@pytest.mark.parametrize("percent", [100, 20])
def test_a_delivery_read_in_parts_trips_as_many_as_the_guard_allows(
    store: ScopeStore, monkeypatch: pytest.MonkeyPatch, percent: float
) -> None:
    """A delivery past one read part (`PART_SCOPES`) is computed as its read arrives.
    With room for every trip, each takes its slot in its commit; at 20% the first
    come get the cap's slots (asked for first, once) and the rest are held back."""
    count = PART_SCOPES + 50
    guarded = replace(FULL, max_isolated_percent=percent)
    asked: list[int] = []
    acquire = store.slots.acquire_many

    def asking(tenants: Any, *args: Any) -> Any:
        asked.append(len(tenants))
        return acquire(tenants, *args)

    monkeypatch.setattr(store.slots, "acquire_many", asking)
    result = ingest(load(_crowd(count, "c")), store, guarded, {}, T0)
    cap = count * percent // 100
    assert result.accepted == count
    assert len(result.held) == count - cap
    assert store.slots.isolated() == {f"c{i}" for i in range(cap)}
    assert (state(store, "c0"), state(store, f"c{count - 1}")) == (
        State.OPEN,
        State.OPEN if percent == 100 else State.CLOSED,
    )
    if store.commits_slots:
        assert asked == ([] if percent == 100 else [count])
    again = ingest(load(_crowd(count, "c")), store, guarded, {}, T0)
    assert (again.accepted, again.duplicates, again.transitions) == (0, count, [])
