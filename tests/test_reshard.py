"""Webhooks for 300 tenants flow into the receiver on a 3-primary Redis Cluster while
`redis-cli --cluster reshard` moves 8,000 slots between the primaries, the slots of the
global keys among them: MOVED and ASK are followed, nothing reaches Alertmanager but
5xx that converge when retried, and every delivery's state is there afterwards. Run
with `-s` for the figures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import requests
from redis.crc import key_slot

from receiver.store import keys
from tests.conftest import READER, TOKENS_ENV, isolate_alert
from tests.redis_nodes import info
from tests.servers import AlertmanagerApi, Receiver, RedisServer
from tests.topologies import ClusterGroup
from tests.webhook_load import Delivery, Sender, assert_converged, outage, tenant_views

pytestmark = pytest.mark.e2e

TENANTS = [f"rs-{i:03d}" for i in range(300)]
RATE_PER_S = 50.0
THREADS = 6
MOVES = [(0, 2, 3000), (1, 0, 2000), (2, 0, 3000)]
"""(source, target, slots) by primary: each source gives its lowest slots, so the
first two carry `{_global}` and `{_incidents}` with them and the last moves the
first's slots back."""
MAX_ROUNDS = 12


@pytest.fixture
def cluster() -> Iterator[ClusterGroup]:
    """A cluster of the test's own: its slot map changes."""
    with ClusterGroup() as started:
        yield started


@pytest.fixture
def receiver(
    cluster: ClusterGroup, redis_server: RedisServer, real_redis: redis.Redis
) -> Iterator[Receiver]:
    """The queue on a plain server, as deployed with a cluster; breakers that stay
    open through the test and a guard that isolates every tenant."""
    env = {
        **TOKENS_ENV,
        "REDIS_URL": cluster.url,
        "NOTIFY_REDIS_URL": redis_server.url,
        "GUARD_MAX_ISOLATED_PERCENT": "100",
        "BREAKER_OPEN_TIMEOUT_S": "600",
        "BREAKER_MAX_OPEN_TIMEOUT_S": "600",
    }
    server = Receiver(env).start()
    yield server
    server.stop()


def round_of(number: int, first_start: float) -> list[Delivery]:
    """Round 0 fires every tenant's alert; odd rounds resolve it; even rounds fire it
    again, a new occurrence (its own startsAt)."""
    starts_at = AlertmanagerApi.time_text(first_start + number // 2)
    if number % 2 == 0:
        return [Delivery(t, isolate_alert(t, starts_at=starts_at)) for t in TENANTS]
    ended = AlertmanagerApi.time_text(time.time())
    return [
        Delivery(t, isolate_alert(t, "resolved", starts_at=starts_at, ends_at=ended))
        for t in TENANTS
    ]


def redirections(cluster: ClusterGroup) -> dict[str, int]:
    """How many MOVED, ASK and TRYAGAIN answers the primaries gave, all told."""
    counts = dict.fromkeys(("MOVED", "ASK", "TRYAGAIN"), 0)
    for port in cluster.ports:
        stats = info(port, "errorstats")
        for kind in counts:
            counts[kind] += int(stats.get(f"errorstat_{kind}", {}).get("count", 0))
    return counts


def incident_tenants(receiver: Receiver) -> set[str]:
    """Every tenant of every incident, through the API."""

    def get(path: str, **params: int) -> Any:
        url = f"{receiver.url}/api/v1{path}"
        response = requests.get(url, params=params, headers=READER, timeout=10)
        response.raise_for_status()
        return response.json()

    found: set[str] = set()
    for incident in get("/incidents", per_page=500)["items"]:
        page = get(f"/incidents/{incident['id']}/tenants", per_page=500)
        assert page["total"] <= 500
        found.update(item["tenant_id"] for item in page["items"])
    return found


def test_deliveries_converge_while_slots_move(cluster: ClusterGroup, receiver: Receiver) -> None:
    """Three reshards under a steady flow of webhooks: every delivery is acknowledged,
    at most after retried 5xx; each tenant opened once, its last alert state is what
    the breaker holds, a replay of it is a duplicate, and the incident has them all."""
    hot = {tag: key_slot(keys.scope_key(tag, "x").encode()) for tag in ("_global", "_incidents")}
    moving: list[set[int]] = []
    windows: list[tuple[float, float]] = []
    done = threading.Event()

    def reshard() -> None:
        try:
            for source, target, count in MOVES:
                moving.append(set(cluster.slots_of(cluster.ports[source])[:count]))
                started = time.monotonic()
                proc = cluster.reshard(cluster.ports[source], cluster.ports[target], count)
                cluster.wait_reshard(proc, timeout_s=180)
                windows.append((started, time.monotonic()))
        finally:
            done.set()

    sender = Sender(receiver.url)
    first_start = time.time() - 60
    rounds: list[list[Delivery]] = []
    with ThreadPoolExecutor(max_workers=1) as side:
        moved = side.submit(reshard)
        while len(rounds) < 2 or (not done.is_set() and len(rounds) < MAX_ROUNDS):
            deliveries = round_of(len(rounds), first_start)
            sender.run(deliveries, RATE_PER_S, THREADS)
            assert_converged(deliveries)
            rounds.append(deliveries)
        moved.result(timeout=300)
    assert done.is_set(), f"the reshards outlasted {MAX_ROUNDS} rounds of deliveries"
    assert hot["_global"] in moving[0] and hot["_incidents"] in moving[1], (hot, moving)
    sent = [delivery for deliveries in rounds for delivery in deliveries]
    while_moving = sum(
        any(start <= a.started <= end for start, end in windows) for d in sent for a in d.attempts
    )
    assert while_moving > 0, "no delivery was sent while slots moved"
    redirected = redirections(cluster)
    assert redirected["MOVED"] > 0, "no client was sent elsewhere: nothing was followed"

    views = tenant_views(receiver.url, TENANTS)
    last_fired = len(rounds) % 2 == 1
    for tenant_id, view in views.items():
        breaker = view["breaker"]
        moves = [(t["from"], t["to"]) for t in breaker["transitions"]]
        assert (breaker["state"], moves) == ("open", [("closed", "open")]), tenant_id
        firing = [f"fp-{tenant_id}"] if last_fired else []
        assert breaker["firing_alerts"] == firing, tenant_id
    opened = [(d.tenant_id, d.transitions()) for d in sent if d.transitions()]
    assert sorted(t for t, _ in opened) == TENANTS, "each tenant reported open once"
    for tenant_id, reported in opened:
        logged = views[tenant_id]["breaker"]["transitions"]
        assert reported == [(t["from"], t["to"], t["at"]) for t in logged], tenant_id

    replay = [Delivery(d.tenant_id, d.body) for d in rounds[-1]]
    sender.run(replay, RATE_PER_S, THREADS)
    assert_converged(replay)
    for delivery in replay:
        assert delivery.reply is not None
        assert (delivery.reply["accepted"], delivery.reply["duplicates"]) == (0, 1)
        assert delivery.reply["transitions"] == []
    listed = requests.get(f"{receiver.url}/api/v1/tenants", headers=READER, timeout=10).json()
    assert listed["total"] == len(TENANTS)
    assert incident_tenants(receiver) == set(TENANTS)

    took = ", ".join(f"{end - start:.1f}s" for start, end in windows)
    print(
        f"\nreshard under load: {sum(count for *_, count in MOVES)} slots moved in "
        f"{len(MOVES)} reshards ({took}); {len(sent)} deliveries in {len(rounds)} rounds, "
        f"{while_moving} attempts sent while slots moved: {outage(sent).describe()}; "
        f"the primaries answered {redirected}"
    )
