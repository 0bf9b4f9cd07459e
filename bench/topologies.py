"""The receiver on standalone Redis, Sentinel and a 3-primary Redis Cluster, in one run.

The deployments (`bench.deployments`) run on loopback one after the other, started
here and stopped by PID. The receiver and `bench.floor_app` run under the shipped
gunicorn settings as in `bench.throughput`; the floor stays up for the whole run and is
measured just before each deployment.

On each deployment, the guard off and the sweep out of the way (as `bench.storm`'s
joins):
- `--posts` isolation webhooks, one new tenant each, all joining one incident, 8
  clients: posts/s against the floor, p99, CPU per post (gunicorn workers; the
  redis-servers holding data, a replica included), Redis commands per post;
- `GET /api/v1/tenants/<id>/admission` (the tenants just isolated) 1 and 8 at a time,
  and `/gate` (a tenant with nothing stored, the common case) 8 at a time: p99 as the
  client and as gunicorn see it, rate; the floor answers both without work;
- one payload of 1,000 alerts (distinct tenants, Redis emptied before each), 3 rounds.

On standalone, `bench.storm`'s storm of `--tenants` too, beside the cluster's.

On Sentinel, the failover gap (`bench.failover`): webhooks at `--rate` per second, the
primary SIGKILLed.

On the cluster, a storm of `--tenants` (`bench.cluster_storm`): per node and per hash
tag, the keys per slot, the board's turn, and a capacity on paper for 3, 6 and 12
primaries (`bench.hotkeys`).

Run:  PYTHONPATH=. .venv/bin/python -m bench.topologies [--json FILE] [--only cluster]
      .venv/bin/python -m bench.topologies --summarize A.json B.json   (median [min, max])
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from bench import cluster_storm, failover, hotkeys
from bench.deployments import ENV, HOOK, JOINS, NAMES, Deployment, deployment, receiver
from bench.sender import Session
from bench.storm import bodies, p99_ms, post_all, rate, run_storm, workers_cpu_s
from bench.throughput import CONCURRENCY, WORKERS, big, gunicorn, load, served_ms
from tests.conftest import READER
from tests.servers import Receiver

Figures = dict[str, Any]
PAYLOAD = 1000
ROUNDS = 3


def checks(server: Receiver, floor: Receiver, count: int, posts: int) -> Figures:
    """Admission and /gate, each on the floor and then on the receiver."""
    admission = "/api/v1/tenants/"
    gate_headers = {**READER, "X-Tenant-ID": "ok"}

    def ask(url: str) -> Callable[[Session, int], Any]:
        return lambda s, i: s.get(
            f"{url}{admission}t{i % posts:05d}/admission", headers=READER, timeout=10
        )

    def gate(url: str) -> Callable[[Session, int], Any]:
        return lambda s, i: s.get(f"{url}/gate", headers=gate_headers, timeout=10)

    out: Figures = {}
    for name, path, call, threads in (
        ("admission_1", admission, ask, 1),
        ("admission_8", admission, ask, CONCURRENCY),
        ("gate_8", "/gate", gate, CONCURRENCY),
    ):
        base = load(call(floor.url), count, threads)
        since = len(server.output())
        mine = load(call(server.url), count, threads)
        time.sleep(0.5)  # the access log is written after the answer
        out[name] = {
            "p99_ms": mine.pct(99),
            "server_p99_ms": statistics.quantiles(served_ms(server, since, path), n=100)[98],
            "per_s": mine.rate,
            "floor_p99_ms": base.pct(99),
            "floor_per_s": base.rate,
            "failed": sum(mine.failed.values()),
        }
    return out


def throughput(d: Deployment, floor: Receiver, posts: int, checks_n: int) -> Figures:
    """New tenants' webhooks and the admission checks, on `d` and on the floor."""
    server = receiver(d, JOINS)
    try:
        post_all(f"{server.url}{HOOK}", bodies(100, "w"))  # connections, scripts loaded
        d.flush()
        base = post_all(f"{floor.url}{HOOK}", bodies(posts, "f"))
        workers, before = workers_cpu_s(server), hotkeys.read_all(d.nodes)
        times = post_all(f"{server.url}{HOOK}", bodies(posts, "t"))
        workers = workers_cpu_s(server) - workers
        used = hotkeys.spent(before, hotkeys.read_all(d.nodes))
        out: Figures = {
            "floor_posts_s": rate(base),
            "posts_s": rate(times),
            "of_floor": rate(times) / rate(base),
            "p99_ms": p99_ms(times),
            "failed": sum(1 for t in times if t[2] != 200),
            "gunicorn_cpu_ms": workers / posts * 1000,
            "redis_cpu_ms": sum(u.cpu_s for u in used.values()) / posts * 1000,
            "commands": sum(u.calls for u in used.values()) / posts,
            "getkeys": sum(u.lookups for u in used.values()) / posts,
            "nodes": {
                role: {"cpu_ms": u.cpu_s / posts * 1000, "commands": u.calls / posts}
                for role, u in used.items()
            },
        }
        out |= checks(server, floor, checks_n, posts)
        before = hotkeys.read_all(d.nodes)
        took = big(f"{server.url}{HOOK}", PAYLOAD, ROUNDS, d.flush)
        used = hotkeys.spent(before, hotkeys.read_all(d.nodes))
        out[f"payload_{PAYLOAD}"] = {
            "median_s": statistics.median(took),
            "min_s": min(took),
            "getkeys": sum(u.lookups for u in used.values()) / ROUNDS,
        }
        return out
    finally:
        server.stop()


def storm_alone(d: Deployment, tenants: int) -> Figures:
    """`bench.storm`'s storm on one redis-server, beside the cluster's."""
    server = receiver(d, {})
    client = redis.Redis.from_url(d.env["REDIS_URL"], decode_responses=True)
    try:
        workers, before = workers_cpu_s(server), hotkeys.read_all(d.nodes)
        result = run_storm(server.url, client, tenants)
        workers = workers_cpu_s(server) - workers
        used = hotkeys.spent(before, hotkeys.read_all(d.nodes))
    finally:
        server.stop()
        client.close()
    return {
        "answered_s": result.answered_s,
        "decided_s": result.decided_s,
        "failed": result.failed,
        "posts_s": tenants / result.answered_s,
        "gunicorn_cpu_ms": workers / tenants * 1000,
        "redis_cpu_ms": sum(u.cpu_s for u in used.values()) / tenants * 1000,
    }


def flat(figures: Any, path: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(figures, dict):
        for key, value in figures.items():
            yield from flat(value, f"{path}.{key}" if path else str(key))
    elif isinstance(figures, int | float) and not isinstance(figures, bool):
        yield path, float(figures)


def summarize(runs: list[Figures]) -> None:
    """Every number present in all runs: the median, and the lowest and highest."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for path, value in flat(run):
            values.setdefault(path, []).append(value)
    for path, seen in values.items():
        if len(seen) == len(runs):
            spread = f"  [{min(seen):.4g}, {max(seen):.4g}]" if len(runs) > 1 else ""
            print(f"{path:<72} {statistics.median(seen):10.4g}{spread}")


def loadavg() -> float:
    """The 1-minute load average: how shared the machine was."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000, help="new tenants per deployment")
    parser.add_argument("--checks", type=int, default=2000, help="admission checks per case")
    parser.add_argument("--tenants", type=int, default=10_000, help="the cluster's storm")
    parser.add_argument("--rate", type=float, default=40.0, help="webhooks/s in the failover")
    parser.add_argument("--limit-s", type=float, default=60.0, help="the failover's bound")
    parser.add_argument("--monitor-at", type=float, default=8.0, help="s into the storm")
    parser.add_argument("--monitor-s", type=float, default=2.0)
    parser.add_argument("--only", nargs="*", choices=NAMES, default=list(NAMES))
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--summarize", nargs="*", help="runs written with --json")
    args = parser.parse_args()
    if args.summarize:
        summarize([json.loads(Path(name).read_text()) for name in args.summarize])
        return
    figures: Figures = {"load_average_start": loadavg()}
    print(f"gunicorn: {WORKERS} sync workers per server; client: {CONCURRENCY} threads")
    floor = gunicorn("bench.floor_app:create_app()", ENV, WORKERS).start()
    try:
        post_all(f"{floor.url}{HOOK}", bodies(200, "w"))
        for name in args.only:
            with deployment(name) as d:
                figures[name] = throughput(d, floor, args.posts, args.checks)
                if name == "standalone":
                    figures["standalone_storm"] = storm_alone(d, args.tenants)
                if name == "sentinel":
                    figures["failover"] = failover.run(d, args.rate, args.limit_s)
                if name == "cluster":
                    figures["storm"] = cluster_storm.run(
                        d, args.tenants, args.monitor_at, args.monitor_s
                    )
    finally:
        floor.stop()
    figures["load_average_end"] = loadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    summarize([figures])


if __name__ == "__main__":
    main()
