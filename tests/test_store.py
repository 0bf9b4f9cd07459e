"""The store's own scripts, directly: guard slots, shared-cause records, commits.
On fakeredis and real Redis."""

from __future__ import annotations

import pytest
import redis

from receiver.breaker import Breaker, State
from receiver.schemas import NotificationSchema
from receiver.store import Change, ScopeStore, Snapshot
from receiver.store.commit import commit_scopes
from receiver.store.retry import attempts
from tests.conftest import T0, isolate_alert


@pytest.fixture
def scopes(redis_client: redis.Redis) -> ScopeStore:
    return ScopeStore(redis_client, log_cap=10, seen_ttl_s=3600)


def test_slots_are_granted_up_to_the_cap_first_come_first_served(scopes: ScopeStore) -> None:
    """10 known tenants at 20%: two slots; a holder keeps its slot on asking again."""
    scopes.add_known([f"t{i}" for i in range(10)], T0)
    granted = scopes.slots.acquire_many(["t1", "t2", "t3"], 20, T0)
    assert [granted[t].granted for t in ("t1", "t2", "t3")] == [True, True, False]
    assert (granted["t3"].isolated, granted["t3"].known, granted["t3"].cap) == (2, 10, 2)
    assert scopes.slots.acquire("t1", 20, T0).granted
    scopes.slots.sync({"t1": False})
    assert scopes.slots.acquire("t3", 20, T0).granted
    assert scopes.slots.isolated() == {"t2", "t3"}


def test_a_cause_record_moves_only_forward_in_event_time(scopes: ScopeStore) -> None:
    """Firing, then resolved; a late copy of the firing state changes nothing."""
    load = NotificationSchema().load
    firing = load(isolate_alert("t1", alertname="TenantNoisyNeighbor", cause="noisy_neighbor"))
    resolved = load(
        isolate_alert("t1", "resolved", alertname="TenantNoisyNeighbor", cause="noisy_neighbor")
    )
    scopes.causes.record(firing.alerts, T0 + 10)
    assert scopes.causes.read(T0 + 10).culprits == {"t1"}
    scopes.causes.record(resolved.alerts, T0 + 400)
    scopes.causes.record(firing.alerts, T0 + 401)
    cause = scopes.causes.read(T0 + 401)
    assert cause.active == [] and cause.ended_at == T0 + 300  # the alert's endsAt


def test_a_commit_that_lost_its_race_is_recomputed_from_a_fresh_read(
    scopes: ScopeStore,
) -> None:
    """Another writer moves the version between read and commit: the loser re-reads,
    and only the attempt that won hands back its result."""
    versions: list[int] = []

    def compute(snapshot: Snapshot) -> tuple[Change | None, int]:
        versions.append(snapshot.version)
        if len(versions) == 1:
            other = Change("t1", snapshot.version, breaker=Breaker(State.FORCED_OPEN))
            scopes.commit([other], T0)
        return Change("t1", snapshot.version, breaker=Breaker()), snapshot.version

    assert commit_scopes(scopes, {"t1": []}, compute, T0) == {"t1": 1}
    assert versions == [0, 1]
    assert scopes.read({"t1": []}, T0)["t1"].breaker == Breaker()


def test_the_retry_helper_gives_a_bounded_number_of_attempts() -> None:
    """`attempts` yields each attempt number once, then stops: the caller raises."""
    assert list(attempts(3)) == [0, 1, 2]
