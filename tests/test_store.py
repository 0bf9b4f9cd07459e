"""The store's own scripts, directly: guard slots, shared-cause records, commits.
On fakeredis and real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from receiver.breaker import Breaker, State, Transition
from receiver.schemas import NotificationSchema
from receiver.store import Change, ScopeStore, Snapshot
from receiver.store import keys as k
from receiver.store.commit import commit_scopes
from receiver.store.retry import attempts
from receiver.store.scope_scripts import BATCH_SCOPES, CHUNK, PART_SCOPES
from receiver.store.slots import Slot
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


def test_a_storms_slots_go_in_order_across_chunks_and_a_repeat_counts_once(
    scopes: ScopeStore,
) -> None:
    """More tenants than one command of the script takes: the first 20% of the known
    (indexed by the same call) get slots, in the order asked, each counted once
    however often it is named; the others are refused with the same figures."""
    tenants = [f"t{i:04d}" for i in range(CHUNK * 2 + 100)]
    asked = [tenants[0], *tenants, tenants[1]]  # repeats of two granted tenants
    granted = scopes.slots.acquire_many(asked, 20, T0)
    cap = len(tenants) // 5
    assert [t for t in tenants if granted[t].granted] == tenants[:cap]
    assert {(s.known, s.cap) for s in granted.values()} == {(len(tenants), cap)}
    assert [granted[t].isolated for t in tenants[cap - 2 : cap + 1]] == [cap - 1, cap, cap]
    assert scopes.slots.isolated() == set(tenants[:cap])
    assert scopes.client.zcard(k.TENANTS) == len(tenants)


def test_a_delivery_reads_the_guard_with_its_scopes(scopes: ScopeStore) -> None:
    """The first round trip carries the guard's counts, with this delivery's tenants
    indexed first, and which of the tenants asked about already hold a slot."""
    scopes.add_known([f"t{i}" for i in range(10)], T0)
    scopes.slots.acquire_many(["t1", "t2"], 20, T0)
    read = scopes.read_delivery(
        {"t2": [], "t3": [], "new": []}, T0, index=["new"], guard_for=["t2", "t3", "new"]
    )
    assert read.guard is not None
    assert (read.guard.held, read.guard.known, read.guard.holding) == (2, 11, {"t2"})
    assert scopes.read_delivery({"t3": []}, T0).guard is None


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


def _trip(scope: str, version: int) -> Change:
    opened = Breaker(State.OPEN, opened_at=T0, open_count=1, firing=frozenset({"fp"}))
    return Change(scope, version, breaker=opened, slot=True)


def test_a_trip_commits_only_with_the_guard_slot_it_takes(scopes: ScopeStore) -> None:
    """10 known tenants at 20%: two slots. Three trips ask the commit for theirs: the
    first two commit holding one, the third is refused with the guard's figures and
    left as it was. On a cluster the slots live in another hash slot than the scopes:
    there a commit takes none, and says so rather than trip without one."""
    scopes.add_known([f"t{i}" for i in range(10)], T0)
    trips = [_trip(t, 0) for t in ("t1", "t2", "t3")]
    if not scopes.commits_slots:
        with pytest.raises(ValueError, match="guard slot"):
            scopes.commit(trips, T0, max_isolated_percent=20)
        assert scopes.read({"t1": []}, T0)["t1"].version == 0
        return
    assert scopes.commit(trips, T0, max_isolated_percent=20) == [1, 1, Slot(False, 2, 10, 2)]
    assert scopes.slots.isolated() == {"t1", "t2"}
    read = scopes.read({t: [] for t in ("t1", "t3")}, T0)
    assert read["t1"].breaker.state is State.OPEN
    assert (read["t3"].version, read["t3"].breaker) == (0, Breaker())
    assert scopes.commit([_trip("t1", 1)], T0, max_isolated_percent=20) == [2]  # keeps its own


def test_a_trip_the_guard_refused_is_computed_again_from_the_same_read(
    real_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The only slot is held: the commit refuses `t1`'s trip, puts the refusal in
    `taken`, and computes `t1` again from the read it had (no second read), which
    now holds the trip back and commits."""
    scopes = ScopeStore(real_redis, log_cap=10, seen_ttl_s=3600)
    scopes.add_known(["t0", "t1", "t2"], T0)
    assert scopes.slots.acquire("t0", 34, T0).granted
    first = scopes.read({"t1": []}, T0)
    taken: dict[str, Slot] = {}

    def compute(snapshot: Snapshot) -> tuple[Change | None, str]:
        refused = taken.get(snapshot.scope)
        if refused is None:
            return _trip(snapshot.scope, snapshot.version), "tripped"
        return Change(snapshot.scope, snapshot.version, breaker=Breaker()), f"held at {refused}"

    def no_second_read(*args: object) -> None:
        raise AssertionError("read again")

    monkeypatch.setattr(scopes, "read", no_second_read)
    result = commit_scopes(
        scopes, {"t1": []}, compute, T0, first_read=first, taken=taken, max_isolated_percent=34
    )
    monkeypatch.undo()
    assert result == {"t1": f"held at {Slot(False, 1, 3, 1)}"}
    assert scopes.slots.isolated() == {"t0"}
    assert scopes.read({"t1": []}, T0)["t1"].version == 1


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


def test_many_scopes_commit_in_batches_each_on_its_own_compare_and_set(
    scopes: ScopeStore,
) -> None:
    """More scopes than one script call takes, one of them read at a stale version:
    that one alone is refused and left as it was; every other commits all it wrote,
    and the next read sees it (a delivery key past one `unpack` chunk included)."""
    count = 2 * BATCH_SCOPES + 50
    names = [f"t{i}" for i in range(count)]
    scopes.commit([Change("t7", 0, breaker=Breaker(State.FORCED_OPEN))], T0)
    opened = Transition(State.CLOSED, State.OPEN, T0, "TenantErrorRateHigh firing", False)
    many_keys = [f"fp{j}:firing:{T0}" for j in range(CHUNK + 20)]
    changes = [
        Change(
            name,
            0,
            breaker=Breaker(State.OPEN, opened_at=T0, open_count=1, firing=frozenset({"fp"})),
            transitions=[opened],
            delivery_keys=many_keys if name == "t3" else [f"fp:firing:{name}"],
            alerts={"fp": f'{{"tenant":"{name}"}}'},
            tier_label="gold",
        )
        for name in names
    ]
    versions = scopes.commit(changes, T0, known=names)
    assert versions == [0 if name == "t7" else 1 for name in names]
    read = scopes.read({name: [f"fp:firing:{name}"] for name in names} | {"t3": many_keys}, T0)
    assert read["t7"].version == 1 and read["t7"].breaker.state is State.FORCED_OPEN
    assert read["t7"].tier_label is None and not read["t7"].seen
    for name in names:
        if name == "t7":
            continue
        snapshot = read[name]
        assert (snapshot.version, snapshot.breaker) == (1, changes[names.index(name)].breaker)
        assert snapshot.tier_label == "gold"
        assert snapshot.seen == frozenset(many_keys if name == "t3" else [f"fp:firing:{name}"])
        assert scopes.transitions(name, 5) == [opened]
        assert scopes.alerts(name) == {"fp": {"tenant": name}}
    assert scopes.known_tenants(0, 1)[1] == count


def test_a_failure_computing_a_later_part_raises_once_the_parts_sent_are_in(
    scopes: ScopeStore,
) -> None:
    """A commit taken from a generator sends each part as it is computed; an error
    computing a later part is raised after the earlier parts were answered: those
    scopes are committed (each on its own), the rest are not."""

    class Broken(Exception):
        pass

    def changes() -> Iterator[Change]:
        for i in range(PART_SCOPES + 10):
            if i == PART_SCOPES + 5:
                raise Broken
            yield Change(f"p{i}", 0, breaker=Breaker(State.OPEN, opened_at=T0))

    with pytest.raises(Broken):
        scopes.commit(changes(), T0)
    read = scopes.read({"p0": [], f"p{PART_SCOPES - 1}": [], f"p{PART_SCOPES}": []}, T0)
    assert [read[s].version for s in ("p0", f"p{PART_SCOPES - 1}", f"p{PART_SCOPES}")] == [1, 1, 0]


def test_a_large_delivery_is_read_in_parts_the_same_as_one_read(scopes: ScopeStore) -> None:
    """Past `PART_SCOPES` scopes, a delivery's read comes in parts behind the first:
    streamed, it gives the snapshots of one read of the same scopes, in their order,
    with the guard, the shared cause and the board's answer from the first part."""
    count = 2 * PART_SCOPES + 5
    names = [f"p{i}" for i in range(count)]
    stored = [names[0], names[PART_SCOPES + 1], names[-1]]  # one in each part
    opened = Breaker(State.OPEN, opened_at=T0, open_count=1, firing=frozenset({"fp"}))
    scopes.commit(
        [Change(s, 0, breaker=opened, delivery_keys=[f"{s}:k"], tier_label="gold") for s in stored],
        T0,
    )
    asked = {s: [f"{s}:k", f"{s}:new"] for s in names}
    expected = scopes.read(asked, T0)
    read = scopes.read_delivery(
        asked, T0, index=names, board_keys=[f"{names[-1]}:k"], guard_for=names
    )
    assert read.board_unseen
    assert read.cause.active == []
    if scopes.commits_slots:
        assert read.guard is not None and (read.guard.held, read.guard.known) == (0, count)
    streamed = list(read.stream())
    assert [s.scope for s in streamed] == names
    assert {s.scope: s for s in streamed} == expected == read.snapshots
    assert [expected[s].seen for s in stored] == [frozenset({f"{s}:k"}) for s in stored]
    assert {expected[s].tier_label for s in stored} == {"gold"}
