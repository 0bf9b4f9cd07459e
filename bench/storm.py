"""Storms: many tenants failing at once, one webhook each, against the floor.

The receiver and `bench.floor_app` run side by side under the same gunicorn
settings (as `bench.throughput`) on a real redis-server; 8 client threads post.

Measures:
- joins: `--tenants` new tenants, one webhook each, all joining one incident (the
  guard off, as in `bench.throughput`, and the periodic sweep out of the way, so
  only joins are measured): posts/s, CPU (gunicorn workers and redis-server) and
  Redis commands (`INFO commandstats`) per join over the first and the last 1,000,
  p99, board conflicts (`blast_radius_board_conflicts_total`);
- repeats: the last 2,000 of those alerts posted again;
- both against the floor and against the floor that also makes one Redis round trip
  per post (`bench.floor_app`), each measured just before and just after;
- the storm: a fresh Redis, the shipped settings (guard on), `--tenants` tenants
  failing at once: from the first post to every answer in and the board decided
  (every tenant on an incident, the guard's cap isolated, the rest held back).

Run: .venv/bin/python -m bench.storm [--tenants N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from bench.sender import Session, encoded
from bench.throughput import CONCURRENCY, WORKERS, gunicorn
from receiver.store import keys
from tests.conftest import READER, TOKENS_ENV, WEBHOOK, isolate_alert
from tests.servers import Receiver, RedisServer

SEGMENT = 1000


def post_all(url: str, bodies: list[dict[str, Any]]) -> list[tuple[float, float, int]]:
    """Each body posted once by 8 threads in order: (start, end, status) per body.
    The bodies are encoded first, off the clock."""
    sent = [encoded(body) for body in bodies]
    out: list[tuple[float, float, int]] = [(0.0, 0.0, 0)] * len(bodies)

    def worker(offset: int) -> None:
        with Session() as session:
            for i in range(offset, len(sent), CONCURRENCY):
                start = time.perf_counter()
                status = session.post(url, data=sent[i], headers=WEBHOOK, timeout=60).status_code
                out[i] = (start, time.perf_counter(), status)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(worker, range(CONCURRENCY)))
    return out


def rate(times: list[tuple[float, float, int]]) -> float:
    return len(times) / (max(t[1] for t in times) - min(t[0] for t in times))


def p99_ms(times: list[tuple[float, float, int]]) -> float:
    return statistics.quantiles([t[1] - t[0] for t in times], n=100)[98] * 1000


def calls_by_command(client: redis.Redis) -> dict[str, int]:
    """Redis commands run so far by name (`INFO commandstats`: `cmdstat_get`, ...), a
    script's own calls included."""
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    return {name: int(v["calls"]) for name, v in stats.items()}


def commands(*clients: redis.Redis) -> int:
    """Redis commands run so far, summed over the servers given."""
    return sum(sum(calls_by_command(client).values()) for client in clients)


def counter(url: str, name: str) -> float:
    """A counter's value summed over its series, from the receiver's `/metrics`; 0 if
    it is not there (code that does not count it)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    lines = [ln for ln in text.splitlines() if ln.startswith(f"blast_radius_{name}_total")]
    return sum(float(ln.split()[-1]) for ln in lines)


def bodies(n: int, prefix: str) -> list[dict[str, Any]]:
    return [isolate_alert(f"{prefix}{i:05d}") for i in range(n)]


def workers_cpu_s(server: Receiver) -> float:
    """CPU seconds spent so far by a gunicorn master and its workers."""
    assert server.proc is not None
    master = server.proc.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    ticks = 0
    for pid in [master, *children]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def redis_cpu_s(client: redis.Redis) -> float:
    """CPU seconds spent so far by one redis-server (`INFO cpu`)."""
    info: dict[str, Any] = client.info("cpu")  # type: ignore[assignment]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cpu_s(server: Receiver, *clients: redis.Redis) -> float:
    """CPU seconds spent so far by the gunicorn workers and the redis-servers: the cost
    of the work, whatever else the machine is doing."""
    return workers_cpu_s(server) + sum(redis_cpu_s(client) for client in clients)


def joins(tenants: int, redis_url: str) -> dict[str, float]:
    """New tenants joining one incident, in three runs: the first 1,000, the middle,
    the last 1,000; each timed, with its CPU and Redis commands. The posts/s of all
    joins and of the repeats, for `main` to set against the floor."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    env = {**TOKENS_ENV, "REDIS_URL": redis_url, "GUARD_MAX_ISOLATED_PERCENT": "100"}
    env["RECEIVER_SWEEP_INTERVAL_S"] = "3600"  # the joins alone; the storm has the sweep
    server = gunicorn("receiver:create_app()", env, WORKERS).start()
    url = f"{server.url}/webhook/alertmanager"
    try:
        posts = bodies(tenants, "j")
        parts = [posts[:SEGMENT], posts[SEGMENT:-SEGMENT], posts[-SEGMENT:]]
        seen: list[tuple[float, float, int, list[tuple[float, float, int]]]] = []
        for part in parts:
            cpu, calls = cpu_s(server, client), commands(client)
            times = post_all(url, part)
            seen.append((cpu_s(server, client) - cpu, commands(client) - calls, 0, times))
        failed = [t[2] for _, _, _, times in seen for t in times if t[2] != 200]
        every = [t for _, _, _, times in seen for t in times]
        print(f"joins, {tenants} new tenants into one incident, {CONCURRENCY} clients:")
        print(f"  all   {rate(every):7.1f} posts/s")
        for name, (cpu, calls, _, times) in (("first", seen[0]), ("last ", seen[2])):
            print(
                f"  {name} {SEGMENT}: {rate(times):7.1f} posts/s, p99 {p99_ms(times):.0f} ms, "
                f"{cpu / len(times) * 1000:.2f} ms CPU and {calls / len(times):.1f} "
                "Redis commands per join"
            )
        ratio = (seen[2][0] / SEGMENT) / (seen[0][0] / SEGMENT)
        print(
            f"  last/first CPU per join {ratio:.2f}; posts/s first/last "
            f"{rate(seen[0][3]) / rate(seen[2][3]):.2f} (done when <= 1.2)"
        )
        print(
            f"  board conflicts {counter(server.url, 'board_conflicts'):.0f}, hand-offs "
            f"{counter(server.url, 'board_handoffs'):.0f}; {len(failed)} posts not 2xx"
        )
        again = post_all(url, posts[-2000:])
        print(f"repeats: {rate(again):7.1f} posts/s")
        return {"joins": rate(every), "repeats": rate(again)}
    finally:
        server.stop()
        client.close()


@dataclass
class Storm:
    times: list[tuple[float, float, int]]
    answered_s: float
    decided_s: float
    on_board: int
    isolated: int
    held: int
    """Held back and not isolated when the board was decided."""
    held_then_isolated: int = 0
    """Held back by one delivery, isolated later within the guard's cap: a trip refused
    while another delivery's slot was pending, retried by the sweep once it was freed."""

    @property
    def failed(self) -> int:
        return sum(1 for t in self.times if t[2] != 200)


def run_storm(
    url: str, client: redis.Redis, tenants: int, answered: Callable[[], None] = lambda: None
) -> Storm:
    """`tenants` tenants failing at once at the receiver `url`, one webhook each, from the
    first post to every answer in and the board decided: no board signals left waiting
    on the hand-off list, and the board listed by the API. `answered` runs between the
    two, off the clock: a snapshot of the servers' counters."""
    posts = bodies(tenants, "s")
    start = time.perf_counter()
    times = post_all(f"{url}/webhook/alertmanager", posts)
    answered_s = time.perf_counter() - start
    answered()
    listing = time.perf_counter()
    while client.llen(keys.INCIDENTS_HANDOFF) and time.perf_counter() < listing + 60:
        time.sleep(0.05)  # the holder's next change, or the sweep, applies them
    listed = requests.get(f"{url}/api/v1/incidents?per_page=100", headers=READER, timeout=30)
    items = listed.json()["items"]
    on_board = sum(i["tenants_total"] for i in items if i["status"] != "resolved")
    decided_s = answered_s + time.perf_counter() - listing
    suppressed = {tenant for i in items for tenant in i.get("suppressed", [])}
    isolated = set(client.smembers(keys.ISOLATED))  # type: ignore[arg-type]
    return Storm(
        times,
        answered_s,
        decided_s,
        on_board,
        len(isolated),
        len(suppressed - isolated),
        len(suppressed & isolated),
    )


def storm(tenants: int, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushall()
    server = gunicorn("receiver:create_app()", {**TOKENS_ENV, "REDIS_URL": redis_url}, WORKERS)
    server.start()
    try:
        result = run_storm(server.url, client, tenants)
        print(f"storm, {tenants} tenants at once, shipped settings, {CONCURRENCY} clients:")
        print(
            f"  all answered in {result.answered_s:.1f} s ({result.failed} not 2xx), "
            f"decided in {result.decided_s:.1f} s"
        )
        print(
            f"  on the board {result.on_board}, isolated {result.isolated} (held back first "
            f"{result.held_then_isolated}), held back {result.held}; "
            f"board conflicts {counter(server.url, 'board_conflicts'):.0f}, "
            f"hand-offs {counter(server.url, 'board_handoffs'):.0f}"
        )
    finally:
        server.stop()
        client.close()


def floor(redis_url: str, round_trip: bool = False) -> float:
    """The floor's posts/s; with `round_trip`, of the floor that also asks Redis once
    per post whether its alerts were seen (`bench.floor_app`)."""
    env = {**TOKENS_ENV, "REDIS_URL": redis_url}
    app = f"bench.floor_app:create_app(round_trip={round_trip})"
    server = gunicorn(app, env, WORKERS).start()
    try:
        times = post_all(f"{server.url}/webhook/alertmanager", bodies(4000, "f"))
        name = "floor with a Redis round trip" if round_trip else "floor"
        print(f"{name}: {rate(times):7.1f} posts/s, p99 {p99_ms(times):.0f} ms")
        return rate(times)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--only", choices=("joins", "storm"), default=None)
    args = parser.parse_args()
    redis_server = RedisServer().start()
    url = redis_server.url
    try:
        if args.only in (None, "joins"):
            # The floor just before and just after: the machine's speed drifts by a
            # third within minutes, so each share is against both, and their mean.
            before = floor(url), floor(url, round_trip=True)
            redis.Redis.from_url(url).flushall()
            rates = joins(args.tenants, url)
            after = floor(url), floor(url, round_trip=True)
            for name, value in rates.items():
                for which, base in ((0, "floor"), (1, "floor with a Redis round trip")):
                    mean = (before[which] + after[which]) / 2
                    print(
                        f"{name}: {value / before[which]:.1%} of the {base} before, "
                        f"{value / after[which]:.1%} after, {value / mean:.1%} of their mean"
                    )
        if args.only in (None, "storm"):
            redis.Redis.from_url(url).flushall()
            storm(args.tenants, url)
    finally:
        redis_server.stop()


if __name__ == "__main__":
    main()
