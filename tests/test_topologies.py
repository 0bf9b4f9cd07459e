"""The Sentinel and Cluster groups the receiver is tested on, checked with redis-py alone:
a failover keeps acknowledged writes and takes new ones; the cluster spreads keys, runs a
script on one hash tag, refuses one across slots, and keeps taking writes while slots move."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from redis.crc import key_slot
from redis.exceptions import ClusterCrossSlotError

from tests.redis_nodes import command, fields, pairs
from tests.topologies import ClusterGroup, SentinelGroup
from tests.topology_fixtures import Topology

pytestmark = pytest.mark.redis

SET_BOTH = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return 2"
"""KEYS[1], KEYS[2]: set to ARGV[1]."""
MOVED_SLOTS = 100
KEYS_PER_SLOT = 20


@pytest.fixture
def sentinels(sentinel_group: SentinelGroup) -> Iterator[SentinelGroup]:
    sentinel_group.flush()
    yield sentinel_group
    sentinel_group.flush()


@pytest.fixture
def cluster(redis_cluster: ClusterGroup) -> Iterator[ClusterGroup]:
    redis_cluster.flush()
    yield redis_cluster
    redis_cluster.flush()


def addresses(url: str) -> list[tuple[str, int]]:
    hosts = urlsplit(url).netloc.split(",")
    return [(host, int(port)) for host, port in (h.rsplit(":", 1) for h in hosts)]


def test_every_url_address_serves_the_topology(redis_topology: Topology) -> None:
    """Each address in the URL is a live server of that topology: sentinels that name a
    primary for the service, cluster nodes in an ok cluster, or the one redis-server."""
    url = urlsplit(redis_topology.url)
    for _, port in addresses(redis_topology.url):
        if redis_topology.name == "sentinel":
            service = url.path.split("/")[1]
            _, primary = command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
            assert command(int(primary), "ROLE")[0] == "master"
        elif redis_topology.name == "cluster":
            assert fields(command(port, "CLUSTER", "INFO"))["cluster_state"] == "ok"
        else:
            assert command(port, "PING") is True
    assert len(addresses(redis_topology.url)) == (1 if redis_topology.name == "standalone" else 3)


def test_a_write_stays_until_the_topology_is_flushed(redis_topology: Topology) -> None:
    """A write through the topology's client reads back, and `flush()` empties it."""
    client = redis_topology.client()
    client.set("br:{acme}:probe", "1")
    assert client.get("br:{acme}:probe") == "1"
    redis_topology.flush()
    assert client.get("br:{acme}:probe") is None
    client.close()


def test_sentinels_see_each_other_and_the_replica_on_loopback(sentinels: SentinelGroup) -> None:
    """Every sentinel knows the other two and the replica, all at 127.0.0.1."""
    primary = sentinels.primary_address()
    for port in sentinels.sentinel_ports:
        peers = command(port, "SENTINEL", "SENTINELS", sentinels.service)
        replicas = command(port, "SENTINEL", "REPLICAS", sentinels.service)
        assert [pairs(peer)["ip"] for peer in peers] == ["127.0.0.1", "127.0.0.1"]
        (replica,) = (pairs(replica) for replica in replicas)
        assert replica["ip"] == "127.0.0.1"
        assert (replica["master-host"], int(replica["master-port"])) == primary


def test_the_sentinel_primary_takes_writes_the_replica_receives(sentinels: SentinelGroup) -> None:
    """A write through `master_for` reads back there and, once acknowledged by WAIT,
    from the replica through `slave_for`."""
    primary = sentinels.client()
    primary.set("br:{acme}:breaker", "open")
    assert primary.get("br:{acme}:breaker") == "open"
    assert primary.wait(1, 2000) == 1
    replica = sentinels.replica_client()
    assert replica.get("br:{acme}:breaker") == "open"
    primary.close()
    replica.close()


@pytest.mark.e2e
def test_a_killed_primary_is_replaced_by_its_replica() -> None:
    """SIGKILL the primary: the sentinels promote the replica, which has what WAIT saw
    acknowledged and takes writes; the old primary comes back as its replica. (Its own
    group: the session's stays whole.)"""
    with SentinelGroup() as group:
        before = group.client()
        before.set("br:{acme}:breaker", "open")
        assert before.wait(1, 2000) == 1
        before.close()

        old = group.kill_primary()
        new = group.wait_failover(old, timeout_s=30)

        assert new != old
        sentinel = redis.Sentinel(group.sentinels, socket_timeout=2)  # type: ignore[no-untyped-call]
        assert sentinel.discover_master(group.service) == new  # type: ignore[no-untyped-call]
        after = group.client()
        assert after.get("br:{acme}:breaker") == "open"
        after.set("br:{acme}:breaker", "half-open")
        rejoined = group.restart_old_primary()
        assert after.wait(1, 2000) == 1
        after.close()
        assert command(rejoined[1], "ROLE")[0] == "slave"
        assert command(rejoined[1], "GET", "br:{acme}:breaker") == "half-open"


def test_the_cluster_spreads_keys_over_three_primaries(cluster: ClusterGroup) -> None:
    """300 tenants' keys land on all three primaries, and each reads back."""
    client = cluster.client()
    for tenant in range(300):
        client.set(f"br:{{tenant-{tenant}}}:breaker", tenant)
    sizes = [command(port, "DBSIZE") for port in cluster.ports]
    assert sum(sizes) == 300
    assert all(size > 0 for size in sizes)
    assert client.get("br:{tenant-7}:breaker") == "7"
    client.close()


def test_a_script_on_one_hash_tag_runs_on_the_cluster(cluster: ClusterGroup) -> None:
    """Keys sharing `{acme}` share a slot, so one script may touch them all."""
    client = cluster.client()
    assert client.eval(SET_BOTH, 2, "br:{acme}:breaker", "br:{acme}:log", "open") == 2
    assert client.mget("br:{acme}:breaker", "br:{acme}:log") == ["open", "open"]
    client.close()


def test_a_script_across_slots_is_refused_with_crossslot(cluster: ClusterGroup) -> None:
    """The node refuses a script whose keys hash to two slots, even one owning the first."""
    first, second = "br:{acme}:breaker", "br:{globex}:breaker"
    assert key_slot(first.encode()) != key_slot(second.encode())
    (owner,) = (p for p in cluster.ports if key_slot(first.encode()) in cluster.slots_of(p))
    with pytest.raises(ClusterCrossSlotError):  # the server's CROSSSLOT
        command(owner, "EVAL", SET_BOTH, 2, first, second, "open")
    assert command(owner, "EXISTS", first) == 0


def keys_in(slots: list[int], per_slot: int) -> list[str]:
    """`per_slot` keys in each of `slots`, found by trying tenant names."""
    wanted = dict.fromkeys(slots, 0)
    keys: list[str] = []
    tenant = 0
    while len(keys) < len(slots) * per_slot:
        key = f"br:{{t{tenant}}}:breaker"
        slot = key_slot(key.encode())
        if wanted.get(slot, per_slot) < per_slot:
            wanted[slot] += 1
            keys.append(key)
        tenant += 1
    return keys


@pytest.mark.e2e
def test_writes_go_on_while_slots_with_keys_move(cluster: ClusterGroup) -> None:
    """Resharding 100 slots holding keys: writes through RedisCluster never fail (it
    follows ASK and MOVED), the slots end on the target, and every last write is there."""
    source, target = cluster.ports[0], cluster.ports[1]
    moving = cluster.slots_of(source)[:MOVED_SLOTS]  # redis-cli moves a source's lowest
    keys = keys_in(moving, KEYS_PER_SLOT)
    client = cluster.client()
    client.mset_nonatomic({key: -1 for key in keys})

    stop = threading.Event()
    last: dict[str, int] = {}
    errors: list[Exception] = []
    while_moving = 0
    proc = cluster.reshard(source, target, MOVED_SLOTS)

    def write() -> None:
        nonlocal while_moving
        count = 0
        while not stop.is_set():
            key = keys[count % len(keys)]
            try:
                client.set(key, count)
            except redis.RedisError as exc:
                errors.append(exc)
            else:
                last[key] = count
                if proc.poll() is None:
                    while_moving += 1
            count += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        cluster.wait_reshard(proc)
    finally:
        stop.set()
        writer.join()

    assert errors == []
    assert while_moving > 0
    assert set(moving) <= set(cluster.slots_of(target))
    assert not set(moving) & set(cluster.slots_of(source))
    values = client.mget_nonatomic(keys)
    assert values == [str(last.get(key, -1)) for key in keys]
    client.close()
