"""Many concurrent deliveries of one alert record exactly one transition."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

from receiver.breaker import Action, State
from receiver.config import BreakerSettings, Settings
from receiver.ingest import ingest
from receiver.operator import act
from receiver.schemas import NotificationSchema
from receiver.store import ScopeStore
from tests.conftest import T0, isolate_alert

S = BreakerSettings()
FULL = Settings("w" * 16, "a" * 16, "d" * 16, breaker=S, max_isolated_percent=100)


def test_racing_threads_open_once(store: ScopeStore) -> None:
    """32 threads deliver the same firing alert: one accepted, one open transition."""
    notification = NotificationSchema().load(isolate_alert("acme"))
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: ingest(notification, store, FULL, {}, T0), range(32)))
    assert sum(r.accepted for r in results) == 1
    assert sum(r.duplicates for r in results) == 31
    assert sum(len(r.transitions) for r in results) == 1
    assert [t.to_state for t in store.transitions("acme", 10)] == [State.OPEN]


def test_racing_operator_and_alerts_keep_a_consistent_log(store: ScopeStore) -> None:
    """Interleaved forced opens/closes and alerts: every logged transition chains."""

    def work(i: int) -> None:
        if i % 3 == 0:
            act(store, "acme", Action.FORCE_OPEN if i % 2 else Action.FORCE_CLOSE, "op", S, T0)
        else:
            body = isolate_alert("acme", starts_at=f"2027-01-15T08:{i % 60:02d}:00Z")
            ingest(NotificationSchema().load(body), store, FULL, {}, T0)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(60)))
    log = list(reversed(store.transitions("acme", 100)))
    assert log, "some transitions must have happened"
    for before, after in itertools.pairwise(log):
        assert before.to_state is after.from_state
    assert store.read({"acme": []}, T0)["acme"].breaker.state is log[-1].to_state
