"""The three Redis deployments the receiver supports, on loopback, for the benches:
one redis-server; Sentinel (a primary, its replica, three sentinels: quorum 2,
`down-after-milliseconds` 1,000, `tests/topologies.py`'s group); a Redis Cluster of
three primaries with a plain redis-server for the notification queue (rq cannot run
on a cluster). Every process is started here and stopped by PID."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from bench import hotkeys
from bench.throughput import WORKERS, gunicorn
from tests.conftest import TOKENS_ENV
from tests.redis_nodes import HOST, command
from tests.servers import ROOT, Receiver, RedisServer
from tests.topologies import ClusterGroup, SentinelGroup

NAMES = ("standalone", "sentinel", "cluster")
RECEIVER = "receiver:create_app()"
HOOK = "/webhook/alertmanager"
ENV = {**TOKENS_ENV, "PYTHONPATH": str(ROOT)}
"""The worktree's receiver in every gunicorn, whatever is installed."""
JOINS = {"GUARD_MAX_ISOLATED_PERCENT": "100", "RECEIVER_SWEEP_INTERVAL_S": "3600"}
"""As `bench.storm`'s joins: every new tenant isolated, the periodic sweep out of the way."""


@dataclass
class Deployment:
    name: str
    env: dict[str, str]
    ports: dict[str, int]
    """Each redis-server holding data, by its role."""
    nodes: dict[str, redis.Redis]
    flush: Callable[[], None]
    group: SentinelGroup | ClusterGroup | None = None

    def cluster_nodes(self) -> dict[str, redis.Redis]:
        return {role: node for role, node in self.nodes.items() if role != "queue"}


@contextmanager
def deployment(name: str) -> Iterator[Deployment]:
    """`name`'s servers, stopped by PID on the way out whatever happened."""
    stops: list[Callable[[], None]] = []
    try:
        d = {"standalone": _standalone, "sentinel": _sentinel, "cluster": _cluster}[name](stops)
        stops.extend(node.close for node in d.nodes.values())
        yield d
    finally:
        for stop in reversed(stops):
            stop()


def _clients(ports: dict[str, int]) -> dict[str, redis.Redis]:
    return {
        role: redis.Redis(host=HOST, port=port, decode_responses=True)
        for role, port in ports.items()
    }


def _standalone(stops: list[Callable[[], None]]) -> Deployment:
    server = RedisServer().start()
    stops.append(server.stop)
    ports = {"server": server.port}

    def flush() -> None:
        command(server.port, "FLUSHALL")

    return Deployment("standalone", {"REDIS_URL": server.url}, ports, _clients(ports), flush)


def _sentinel(stops: list[Callable[[], None]]) -> Deployment:
    group = SentinelGroup()
    stops.append(group.start().stop)
    primary, replica = group.data_ports
    ports = {"primary": primary, "replica": replica}
    env = {"REDIS_URL": group.url}
    return Deployment("sentinel", env, ports, _clients(ports), group.flush, group)


def _cluster(stops: list[Callable[[], None]]) -> Deployment:
    group = ClusterGroup()
    stops.append(group.start().stop)
    queue = RedisServer().start()
    stops.append(queue.stop)
    ports = {hotkeys.role(group.slots_of(port)): port for port in group.ports}
    ports["queue"] = queue.port
    env = {"REDIS_URL": group.url, "NOTIFY_REDIS_URL": queue.url}

    def flush() -> None:
        group.flush()
        command(queue.port, "FLUSHALL")

    return Deployment("cluster", env, ports, _clients(ports), flush, group)


def receiver(d: Deployment, settings: dict[str, str], flush: bool = True) -> Receiver:
    """The receiver on `d` (emptied first), with `settings` over the shipped ones."""
    if flush:
        d.flush()
    return gunicorn(RECEIVER, {**ENV, **settings, **d.env}, WORKERS).start()
