"""Redis Sentinel and Redis Cluster for the session, started by the first test that asks,
and `redis_topology`, which runs a test once on each of standalone Redis, Sentinel and
Cluster, emptied before and after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from redis.cluster import RedisCluster

from tests.servers import RedisServer
from tests.topologies import ClusterGroup, SentinelGroup


@dataclass(frozen=True)
class Topology:
    """A Redis deployment as a test sees it: the URL the receiver is given, a client of
    its (current) primaries, and a way to empty it."""

    name: str
    url: str
    flush: Callable[[], None]
    client: Callable[[], redis.Redis | RedisCluster]


@pytest.fixture(scope="session")
def sentinel_group() -> Iterator[SentinelGroup]:
    """A primary, a replica and three sentinels; a test that kills a node starts its own."""
    group = SentinelGroup().start()
    yield group
    group.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterGroup]:
    """Three cluster primaries holding all the slots."""
    cluster = ClusterGroup().start()
    yield cluster
    cluster.stop()


def standalone_topology(server: RedisServer) -> Topology:
    def client() -> redis.Redis:
        return redis.Redis.from_url(server.url, decode_responses=True)

    def flush() -> None:
        with client() as connection:
            connection.flushall()

    return Topology("standalone", server.url, flush, client)


def sentinel_topology(group: SentinelGroup) -> Topology:
    return Topology("sentinel", group.url, group.flush, group.client)


def cluster_topology(group: ClusterGroup) -> Topology:
    return Topology("cluster", group.url, group.flush, group.client)


@pytest.fixture(
    params=[
        pytest.param("standalone", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
def redis_topology(request: pytest.FixtureRequest) -> Iterator[Topology]:
    """The test once per Redis deployment the receiver supports, each emptied before and
    after; `url` is what the receiver is given."""
    if request.param == "standalone":
        topology = standalone_topology(request.getfixturevalue("redis_server"))
    elif request.param == "sentinel":
        topology = sentinel_topology(request.getfixturevalue("sentinel_group"))
    else:
        topology = cluster_topology(request.getfixturevalue("redis_cluster"))
    topology.flush()
    yield topology
    topology.flush()
