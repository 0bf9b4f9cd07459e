"""A storm on the Redis Cluster, for `bench.topologies`: `bench.storm`'s (a fresh
cluster, the shipped settings, every tenant failing at once, one webhook each), then
20 s with nothing posted (the sweep's own load), then, the sweep out of the way,
REPEATS of the storm's alerts delivered again and new tenants one at a time.

Where the load lands is read by `bench.hotkeys`: per node from `INFO`; per hash tag and
key from a MONITOR window in the storm; the board's turn (the short lock every board
change takes, `br:{_incidents}:turn`) timed from MONITOR's transcript, then polled
without MONITOR, then polled again while one client posts alone. Rates are those
outside the watched windows (counters read at their edges): MONITOR slows the nodes
while it runs, and the poll adds its own reads.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import requests

from bench import hotkeys
from bench.deployments import HOOK, Deployment, receiver
from bench.storm import Storm, bodies, post_all, rate, run_storm, workers_cpu_s
from receiver.store import keys
from tests.conftest import WEBHOOK, isolate_alert
from tests.servers import Receiver
from tests.topologies import ClusterGroup

Figures = dict[str, Any]
REPEATS = 2000
SOLO_MAX = 5000
"""A bound on the one-at-a-time posts while the turn is polled."""
IDLE_S = 20.0
"""Nothing posted after the storm: about four sweeps."""
SWEEP_S = 5.0
"""The shipped `RECEIVER_SWEEP_INTERVAL_S`."""
"""A bound on the one-at-a-time posts while the turn is polled."""


@dataclass
class Window:
    """A stretch of the storm under observation, taken out of the storm's rates: what
    the nodes and the gunicorn workers spent in it."""

    start: float
    end: float
    used: dict[str, hotkeys.Counters]
    gunicorn_s: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def __contains__(self, at: float) -> bool:
        return self.start <= at <= self.end


T = TypeVar("T")


def observed(server: Receiver, d: Deployment, look: Callable[[], T]) -> tuple[Window, T]:
    nodes = d.cluster_nodes()
    start, before, workers = time.perf_counter(), hotkeys.read_all(nodes), workers_cpu_s(server)
    found = look()
    workers, used = workers_cpu_s(server) - workers, hotkeys.spent(before, hotkeys.read_all(nodes))
    return Window(start, time.perf_counter(), used, workers), found


@dataclass
class Watched:
    monitor: Window
    samples: dict[str, hotkeys.Sample]
    """MONITOR's transcript of each node, by role."""
    poll: Window
    polled: hotkeys.Polled

    @property
    def windows(self) -> tuple[Window, Window]:
        return self.monitor, self.poll


def watch(server: Receiver, d: Deployment, after_s: float, for_s: float) -> Watched:
    """MONITOR on every cluster node for `for_s`, `after_s` from now; a second later,
    the board's turn polled for as long."""
    time.sleep(after_s)
    ports = {role: d.ports[role] for role in d.cluster_nodes()}
    monitor, by_port = observed(server, d, lambda: hotkeys.monitor(list(ports.values()), for_s))
    time.sleep(1.0)
    board = ports[f"{{{keys.INCIDENTS_TAG}}}"]
    poll, polled = observed(server, d, lambda: hotkeys.poll_turn(board, for_s))
    return Watched(monitor, {role: by_port[port] for role, port in ports.items()}, poll, polled)


def run(d: Deployment, tenants: int, watch_at_s: float, watch_s: float) -> Figures:
    """The storm and the sweep after it under the shipped settings, then the repeats
    and the solo posts with the sweep out of the way."""
    group = d.group
    assert isinstance(group, ClusterGroup)
    server = receiver(d, {})
    try:
        out, tenant_keys = storm(server, d, group, tenants, watch_at_s, watch_s)
        idle, _ = observed(server, d, lambda: time.sleep(IDLE_S))
    finally:
        server.stop()
    out["sweep"] = sweep_figures(idle, tenants)
    quiet = receiver(d, {"RECEIVER_SWEEP_INTERVAL_S": "3600"}, flush=False)
    try:
        again = bodies(tenants, "s")[-REPEATS:]
        repeating, times = observed(quiet, d, lambda: post_all(f"{quiet.url}{HOOK}", again))
        out["turn"] |= solo(quiet, d.ports[f"{{{keys.INCIDENTS_TAG}}}"], watch_s)
    finally:
        quiet.stop()
    out["repeats"] = {
        "per_s": rate(times),
        "failed": sum(1 for t in times if t[2] != 200),
        "gunicorn_cpu_ms": repeating.gunicorn_s / REPEATS * 1000,
        "nodes": {
            role: {
                "cpu_ms": u.cpu_s / REPEATS * 1000,
                "commands": u.calls / REPEATS,
                "getkeys": u.lookups / REPEATS,
            }
            for role, u in repeating.used.items()
        },
    }
    per_alert = {role: u.cpu_s / REPEATS for role, u in repeating.used.items()}
    out["paper_repeats"] = paper(per_alert, tenant_keys)
    return out


def storm(
    server: Receiver,
    d: Deployment,
    group: ClusterGroup,
    tenants: int,
    watch_at_s: float,
    watch_s: float,
) -> tuple[Figures, dict[str, int]]:
    """The storm, watched; its figures, and the tenant keys each node holds after it."""
    nodes = d.cluster_nodes()
    client = group.client()
    seen: list[Watched] = []
    end: dict[str, Any] = {}
    try:
        workers, before = workers_cpu_s(server), hotkeys.read_all(nodes)
        watcher = threading.Thread(
            target=lambda: seen.append(watch(server, d, watch_at_s, watch_s))
        )
        watcher.start()

        def answered() -> None:
            end.update(workers=workers_cpu_s(server), nodes=hotkeys.read_all(nodes))

        result = run_storm(server.url, client, tenants, answered)  # type: ignore[arg-type]
        watcher.join()
    finally:
        client.close()
    counted = {
        role: hotkeys.census(node, group.slots_of(d.ports[role])) for role, node in nodes.items()
    }
    (watched,) = seen
    assert watched.poll.end < result.times[-1][1], "the storm ended before the watch did"
    used = hotkeys.spent(before, end["nodes"])
    for window in watched.windows:
        used = {role: u - window.used[role] for role, u in used.items()}
    outside = Outside(result, watched.windows)
    gunicorn_s = end["workers"] - workers - sum(w.gunicorn_s for w in watched.windows)
    out = storm_figures(result, outside, used, gunicorn_s)
    out["turn"] = turn_figures(result, watched)
    out["nodes"] = node_figures(outside, watched.samples, used, counted, end["nodes"])
    tenant_keys = {role: census.tenant_keys for role, census in counted.items()}
    out["paper_storm"] = paper({r: u.cpu_s / outside.posts for r, u in used.items()}, tenant_keys)
    return out, tenant_keys


def paper(per_alert: dict[str, float], tenant_keys: dict[str, int]) -> Figures:
    tenant, own, ceilings = hotkeys.on_paper(per_alert, tenant_keys)
    return {
        "tenant_redis_cpu_ms": tenant * 1000,
        "tag_redis_cpu_ms": {tag: cost * 1000 for tag, cost in own.items()},
        "ceilings": {c.primaries: asdict(c) for c in ceilings},
    }


def sweep_figures(idle: Window, tenants: int) -> Figures:
    """The sweep alone after the storm (every known tenant read each interval, the held
    ones asking for slots): per second, and per known tenant and sweep."""
    sweeps = idle.seconds / SWEEP_S
    return {
        "gunicorn_cpu_of_a_core": idle.gunicorn_s / idle.seconds,
        "gunicorn_cpu_ms_per_1000_tenants": idle.gunicorn_s / sweeps / tenants * 1e6,
        "nodes": {
            role: {
                "commands_s": u.calls / idle.seconds,
                "cpu_of_a_core": u.cpu_s / idle.seconds,
                "commands_per_tenant": u.calls / sweeps / tenants,
            }
            for role, u in idle.used.items()
        },
    }


@dataclass
class Outside:
    """The storm without its watched windows."""

    posts: int
    seconds: float

    def __init__(self, result: Storm, windows: tuple[Window, ...]) -> None:
        self.posts = sum(1 for t in result.times if not any(t[1] in w for w in windows))
        self.seconds = result.answered_s - sum(w.seconds for w in windows)


def storm_figures(
    result: Storm, outside: Outside, used: dict[str, hotkeys.Counters], gunicorn_s: float
) -> Figures:
    return {
        "answered_s": result.answered_s,
        "decided_s": result.decided_s,
        "failed": result.failed,
        "on_board": result.on_board,
        "isolated": result.isolated,
        "held_back": result.held,
        "posts_outside": outside.posts,
        "posts_s_outside": outside.posts / outside.seconds,
        "gunicorn_cpu_ms": gunicorn_s / outside.posts * 1000,
        "redis_cpu_ms": sum(u.cpu_s for u in used.values()) / outside.posts * 1000,
    }


def turn_figures(result: Storm, watched: Watched) -> Figures:
    """The board's turn, under MONITOR (each hold timed) and polled (without MONITOR:
    the share of reads that found it taken, against the posts answered meanwhile)."""
    board = watched.samples[f"{{{keys.INCIDENTS_TAG}}}"]
    holds = sorted(board.turn_holds_s)
    polled, poll = watched.polled, watched.poll
    posts_s = sum(1 for t in result.times if t[1] in poll) / poll.seconds
    held_share = polled.held / polled.reads
    return {
        "monitor_posts_s": sum(1 for t in result.times if t[1] in watched.monitor)
        / watched.monitor.seconds,
        "monitor_changes_s": len(holds) / board.span_s,
        "monitor_hold_ms_median": statistics.median(holds) * 1000,
        "monitor_hold_ms_p99": statistics.quantiles(holds, n=100)[98] * 1000,
        "monitor_held_share": sum(holds) / board.span_s,
        "monitor_tries_per_change": board.turn_tries / len(holds),
        "polled_posts_s": posts_s,
        "polled_reads": polled.reads,
        "polled_owners_s": polled.owners / poll.seconds,
        "polled_held_share": held_share,
        "polled_hold_ms_mean": held_share / posts_s * 1000,
        "polled_ceiling_changes_s": posts_s / held_share,
    }


def solo(server: Receiver, board: int, seconds: float) -> Figures:
    """New tenants posted one at a time while the turn is polled: how long a change
    holds it when nothing else on the machine waits for the same cores as its owner."""
    polled: list[hotkeys.Polled] = []
    poller = threading.Thread(target=lambda: polled.append(hotkeys.poll_turn(board, seconds)))
    answered = 0
    with requests.Session() as session:
        start = time.perf_counter()
        poller.start()
        for i in range(SOLO_MAX):
            body = isolate_alert(f"u{i:05d}")
            session.post(f"{server.url}{HOOK}", json=body, headers=WEBHOOK, timeout=60)
            answered += 1
            if not poller.is_alive():
                break
        poller.join()
        elapsed = time.perf_counter() - start
    held_share = polled[0].held / polled[0].reads
    return {
        "solo_posts_s": answered / elapsed,
        "solo_held_share": held_share,
        "solo_hold_ms_mean": held_share * elapsed / answered * 1000,
        "solo_ceiling_changes_s": answered / elapsed / held_share,
    }


def node_figures(
    outside: Outside,
    samples: dict[str, hotkeys.Sample],
    used: dict[str, hotkeys.Counters],
    counted: dict[str, hotkeys.Census],
    totals: dict[str, hotkeys.Counters],
) -> Figures:
    """Each node outside the windows, and its MONITOR shares applied to those rates."""
    out: Figures = {}
    for role, u in used.items():
        sample = samples[role]
        calls_s = u.calls / outside.seconds

        def ops_s(n: int, calls_s: float = calls_s, sample: hotkeys.Sample = sample) -> float:
            return n / sample.total * calls_s

        out[role] = {
            "commands_s": calls_s,
            "cpu_of_a_core": u.cpu_s / outside.seconds,
            "cpu_ms": u.cpu_s / outside.posts * 1000,
            "commands": u.calls / outside.posts,
            "memory_mb": totals[role].used_memory / 1e6,
            "census": asdict(counted[role]),
            "sampled": sample.total,
            "tag_ops_s": {tag: ops_s(n) for tag, n in sorted(sample.by_tag.items())},
            "getkeys": u.lookups / outside.posts,
            "hottest_tenant_ops_s": [(t, ops_s(n)) for t, n in sample.by_tenant.most_common(1)],
            "hottest_keys_ops_s": [(k, ops_s(n)) for k, n in sample.by_key.most_common(6)],
        }
    return out
