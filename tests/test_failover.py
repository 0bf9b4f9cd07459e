"""A Sentinel failover under load: the primary SIGKILLed (or frozen, as a machine that
stops answering) while 200 tenants' webhooks flow into the receiver under gunicorn, with
`REDIS_MIN_REPLICAS=1`. No acknowledged delivery is lost, every failed one converges
when retried, no transition is recorded twice, and the receiver serves again without a
restart; a write in flight lands on the promoted replica. Run with `-s` for the
measured gap and 5xx count."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from receiver.store import keys
from receiver.store.client import open_client
from tests.conftest import TOKENS_ENV, isolate_alert
from tests.redis_nodes import command
from tests.servers import AlertmanagerApi, Receiver, wait_for
from tests.topologies import SentinelGroup
from tests.webhook_load import Delivery, Sender, assert_converged, outage, tenant_views

pytestmark = pytest.mark.e2e

TENANTS = [f"fo-{i:03d}" for i in range(200)]
REPEATED = TENANTS[0::3]
"""Fire, then Alertmanager's repeat of the same firing: a duplicate."""
RESOLVED = TENANTS[1::3]
"""Fire, then resolve: open, half-open, closed."""
REFIRED = TENANTS[2::3]
"""Fire, resolve, and once closed fire again: opened twice."""
RATE_PER_S = 40.0
THREADS = 6
KILL_AFTER = 60
"""Acknowledged deliveries before the primary is killed: a third into the first wave."""


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    """A Sentinel group of the test's own: its primary is killed."""
    with SentinelGroup() as started:
        yield started


@pytest.fixture
def receiver(group: SentinelGroup) -> Iterator[Receiver]:
    """Every tenant may be isolated (the guard out of the way); breakers cycle in
    seconds, so a resolved tenant closes while the test runs."""
    env = {
        **TOKENS_ENV,
        "REDIS_URL": group.url,
        "REDIS_MIN_REPLICAS": "1",
        "GUARD_MAX_ISOLATED_PERCENT": "100",
        "BREAKER_OPEN_TIMEOUT_S": "1",
        "BREAKER_MAX_OPEN_TIMEOUT_S": "2",
        "BREAKER_HALF_OPEN_PROBATION_S": "1",
        "RECEIVER_SWEEP_INTERVAL_S": "1",
    }
    server = Receiver(env).start()
    yield server
    server.stop()


def stamp(epoch_s: float) -> str:
    return AlertmanagerApi.time_text(epoch_s)


def alert_opens_in(tenant_id: str, transitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Opens caused by the tenant's alert firing, not by time passing."""
    reason = f"isolation alert fp-{tenant_id} firing"
    return [t for t in transitions if t["to"] == "open" and t["reason"].startswith(reason)]


def alert_opens(view: dict[str, Any]) -> list[dict[str, Any]]:
    return alert_opens_in(view["tenant_id"], view["breaker"]["transitions"])


def transition_logs(group: SentinelGroup) -> dict[str, list[tuple[str, str, float]]]:
    """Every tenant's transition log as the (new) primary holds it, in one read each
    (the API adds transitions due but not yet recorded, read apart from the log)."""
    client = group.client()
    pipe = client.pipeline(transaction=False)
    for tenant_id in TENANTS:
        pipe.lrange(keys.scope_key(tenant_id, "transitions"), 0, -1)
    replies = pipe.execute()
    client.close()
    return {
        tenant_id: [(t["from"], t["to"], t["at"]) for t in map(json.loads, raw)]
        for tenant_id, raw in zip(TENANTS, replies, strict=True)
    }


def assert_recorded(group: SentinelGroup, deliveries: list[Delivery]) -> None:
    """Each transition an acknowledging answer reported is in the tenant's log, and no
    transition is logged twice."""
    logs = transition_logs(group)
    for delivery in deliveries:
        assert set(delivery.transitions()) <= set(logs[delivery.tenant_id]), delivery.tenant_id
    for tenant_id, logged in logs.items():
        assert len(logged) == len(set(logged)), (tenant_id, logged)


def assert_listed_once(views: dict[str, dict[str, Any]]) -> None:
    """The API, which adds the transitions due but not yet recorded, lists none twice."""
    for tenant_id, view in views.items():
        listed = [(t["from"], t["to"], t["at"]) for t in view["breaker"]["transitions"]]
        assert len(listed) == len(set(listed)), (tenant_id, listed)


def all_closed(receiver: Receiver, tenant_ids: list[str]) -> bool:
    views = tenant_views(receiver.url, tenant_ids)
    return all(view["breaker"]["state"] == "closed" for view in views.values())


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_a_write_in_flight_lands_on_the_promoted_replica(fault: str) -> None:
    """A write sent once the primary is gone (refusing connections, or frozen and
    silent) lands on the replica Sentinel promotes, given a retry budget longer than
    the failover: each retry asks the sentinels where the primary is now."""
    with SentinelGroup() as group:
        client = open_client(group.url, timeout_s=0.5, retry_budget_s=20)
        client.set("br:{acme}:probe", "before")
        old = group.kill_primary() if fault == "killed" else group.freeze_primary()
        client.set("br:{acme}:probe", "after")
        new = group.wait_failover(old)
        assert command(new[1], "GET", "br:{acme}:probe") == "after"
        client.close()


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_a_lost_primary_loses_no_acknowledged_delivery(
    group: SentinelGroup, receiver: Receiver, fault: str
) -> None:
    """SIGKILL the primary mid-stream (or SIGSTOP it, as a machine that stops
    answering): after Sentinel's promotion (and the old primary back as a replica,
    which `REDIS_MIN_REPLICAS=1` needs) every delivery converges, every acknowledged
    one is in state, and no breaker moved twice for one firing."""
    sender = Sender(receiver.url)
    first_start = stamp(time.time() - 60)
    fires = [Delivery(t, isolate_alert(t, starts_at=first_start)) for t in TENANTS]
    marks: dict[str, float] = {}

    def fail_over() -> None:
        wait_for(lambda: sender.acknowledged >= KILL_AFTER, 60, f"{KILL_AFTER} acknowledged")
        marks["killed"] = time.monotonic()
        old = group.kill_primary() if fault == "killed" else group.freeze_primary()
        group.wait_failover(old, timeout_s=30)
        marks["promoted"] = time.monotonic()
        group.restart_old_primary()
        marks["rejoined"] = time.monotonic()

    with ThreadPoolExecutor(max_workers=1) as side:
        chaos = side.submit(fail_over)
        sender.run(fires, RATE_PER_S, THREADS)
        chaos.result(timeout=120)

    assert receiver.proc is not None and receiver.proc.poll() is None, "gunicorn exited"
    assert_converged(fires)
    views = tenant_views(receiver.url, TENANTS)
    for tenant_id, view in views.items():
        assert len(alert_opens(view)) == 1, (tenant_id, view["breaker"]["transitions"])
        assert view["breaker"]["firing_alerts"] == [f"fp-{tenant_id}"], tenant_id
    assert_recorded(group, fires)
    assert_listed_once(views)
    during = outage(fires)
    in_flight = [a for d in fires for a in d.attempts if a.started < marks["promoted"]]
    assert any(a.answered > marks["killed"] for a in in_flight), "nothing crossed the failover"

    ended = stamp(time.time())
    repeats = [Delivery(d.tenant_id, copy.deepcopy(d.body)) for d in fires[0::3]]
    resolves = [
        Delivery(t, isolate_alert(t, "resolved", starts_at=first_start, ends_at=ended))
        for t in [*RESOLVED, *REFIRED]
    ]
    sender.run([*repeats, *resolves], RATE_PER_S, THREADS)
    assert_converged([*repeats, *resolves])
    for repeat in repeats:
        assert repeat.reply is not None
        assert (repeat.reply["accepted"], repeat.reply["duplicates"]) == (0, 1), repeat.reply
        assert not alert_opens_in(repeat.tenant_id, repeat.reply["transitions"]), repeat.reply

    wait_for(lambda: all_closed(receiver, REFIRED), 30, "every refired tenant closed first")
    second_start = stamp(time.time())
    refires = [Delivery(t, isolate_alert(t, starts_at=second_start)) for t in REFIRED]
    sender.run(refires, RATE_PER_S, THREADS)
    assert_converged(refires)
    wait_for(lambda: all_closed(receiver, RESOLVED), 30, "every resolved tenant closed")

    views = tenant_views(receiver.url, TENANTS)
    assert_recorded(group, [*fires, *repeats, *resolves, *refires])
    assert_listed_once(views)
    for tenant_id in REPEATED:
        assert len(alert_opens(views[tenant_id])) == 1, tenant_id
        assert views[tenant_id]["breaker"]["firing_alerts"] == [f"fp-{tenant_id}"]
    for tenant_id in RESOLVED:
        breaker = views[tenant_id]["breaker"]
        assert len(alert_opens(views[tenant_id])) == 1, tenant_id
        assert (breaker["state"], breaker["firing_alerts"]) == ("closed", []), tenant_id
    for tenant_id in REFIRED:
        breaker = views[tenant_id]["breaker"]
        assert len(alert_opens(views[tenant_id])) == 2, (tenant_id, breaker["transitions"])
        assert ("half_open", "closed") in [(t["from"], t["to"]) for t in breaker["transitions"]]
        assert breaker["firing_alerts"] == [f"fp-{tenant_id}"], tenant_id

    after = outage([*repeats, *resolves, *refires])
    print(
        f"\nfailover under load, primary {fault}: {during.describe(marks['killed'])}; promoted "
        f"{marks['promoted'] - marks['killed']:.2f}s and old primary back as a replica "
        f"{marks['rejoined'] - marks['killed']:.2f}s after the kill; afterwards "
        f"{after.describe()}"
    )
