"""Webhook and admission throughput on the deployed shape, against a floor.

The receiver (logs and metrics wired in) and `bench.floor_app`, a Flask app that
only parses the JSON, run side by side under the same gunicorn settings (the
shipped gunicorn.conf.py, 2 x CPUs + 1 workers) on a real redis-server. The client
runs on the same machine. The blast-radius guard is off (GUARD_MAX_ISOLATED_PERCENT
=100): every alert names a new tenant, and each of them is isolated.

Measures, each for the receiver and for the floor:
- single-alert posts at concurrency 8 (a thread pool, one `bench.sender` session each):
  throughput and p50/p99 latency, for `--new` tenants failing one after another
  (all join one incident) and for duplicate re-deliveries of those alerts;
- one payload of 1,000 and of 10,000 alerts (distinct tenants, Redis emptied
  before each): time to the answer;
- GET /api/v1/tenants/<id>/admission: p50/p99 one at a time, and at concurrency 8.

Latency is as the client sees it; "server-side" is gunicorn's own request time
from its access log, without the client's share of the two CPUs.

Run: .venv/bin/python -m bench.throughput [--singles N] [--new N] [--rounds N]
     .venv/bin/python -m bench.throughput --payloads [--rounds N]   (the large payloads only)
     .venv/bin/python -m bench.throughput --profile   (in-process: time per step, cProfile)
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import statistics
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis

from bench.sender import Answer, Session, encoded
from tests.conftest import READER, TOKENS_ENV, WEBHOOK, isolate_alert
from tests.servers import Receiver, RedisServer

CONCURRENCY = 8
WORKERS = min(2 * (os.cpu_count() or 1) + 1, 8)
"""gunicorn.conf.py's default with Redis; passed to both servers alike."""


def gunicorn(app: str, env: dict[str, str], workers: int) -> Receiver:
    """gunicorn serving `app` with the same flags as the tests, and a timeout long
    enough for the slowest payload measured here (10,000 alerts)."""
    return Receiver(env, workers, app=app, extra_args=("--timeout", "300"))


def grouped(size: int, prefix: str) -> dict[str, Any]:
    """One payload of `size` firing isolation alerts, one tenant each."""
    body = isolate_alert(f"{prefix}0")
    template = body["alerts"][0]
    body["alerts"] = [
        {
            **template,
            "labels": {**template["labels"], "tenant_id": f"{prefix}{i}"},
            "fingerprint": f"{prefix}-fp{i}",
        }
        for i in range(size)
    ]
    return body


@dataclass
class Run:
    seconds: float
    latencies: list[float]
    failed: dict[int, int]
    """Non-2xx answers by status code; they count in latency, not in the rate."""

    @property
    def rate(self) -> float:
        return (len(self.latencies) - sum(self.failed.values())) / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def load(call: Callable[[Session, int], Answer], count: int, threads: int) -> Run:
    """`count` calls over `threads` threads, each with its own session."""

    def worker(offset: int) -> tuple[list[float], list[int]]:
        session = Session()
        times, codes = [], []
        for i in range(offset, count, threads):
            start = time.perf_counter()
            response = call(session, i)
            times.append(time.perf_counter() - start)
            codes.append(response.status_code)
        return times, codes

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(worker, range(threads)))
    failed = Counter(code for _, codes in results for code in codes if code >= 300)
    return Run(time.perf_counter() - start, [t for ts, _ in results for t in ts], dict(failed))


def poster(url: str, bodies: list[dict[str, Any]]) -> Callable[[Session, int], Answer]:
    """Posts of `bodies` by index, each encoded now, before any clock starts."""
    sent = [encoded(body) for body in bodies]
    return lambda session, i: session.post(url, data=sent[i], headers=WEBHOOK, timeout=60)


def line(name: str, run: Run, floor: Run | None = None) -> str:
    ratio = f"  {run.rate / floor.rate:6.1%} of floor" if floor else ""
    failed = f"  failed: {run.failed}" if run.failed else ""
    return (
        f"{name:<34} {run.rate:8.1f} req/s  p50 {run.pct(50):7.2f} ms  "
        f"p99 {run.pct(99):7.2f} ms{ratio}{failed}"
    )


def big(url: str, size: int, rounds: int, flush: Callable[[], None]) -> list[float]:
    times = []
    session = Session()
    for r in range(rounds):
        flush()
        body = encoded(grouped(size, f"b{r}x"))
        start = time.perf_counter()
        response = session.post(url, data=body, headers=WEBHOOK, timeout=120)
        times.append(time.perf_counter() - start)
        response.raise_for_status()
        assert response.json()["accepted"] == size, response.text[:200]
    return times


def served_ms(server: Receiver, since: int, path: str) -> list[float]:
    """The server's own times (its access log) for `path` after `since`, in order."""
    times = []
    for text in server.output()[since:].splitlines():
        if not text.startswith("{"):
            continue
        entry = json.loads(text)
        if str(entry.get("path", "")).startswith(path) and "duration_ms" in entry:
            times.append(entry["duration_ms"])
    return sorted(times)


def served(server: Receiver, since: int, path: str) -> str:
    """p50/p99 of the server's own time (its access log) for `path` after `since`."""
    times = served_ms(server, since, path)
    if not times:
        return ""
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(0.99 * len(times)))]
    return f"  server-side p50 {p50:.2f} ms p99 {p99:.2f} ms"


def measured(
    server: Receiver,
    path: str,
    call: Callable[[Session, int], Answer],
    count: int,
    threads: int,
) -> tuple[Run, str]:
    since = len(server.output())
    run = load(call, count, threads)
    time.sleep(0.5)  # the access log is written after the answer
    return run, served(server, since, path)


def payloads(ours: Receiver, floor: Receiver, rounds: int, flush: Callable[[], None]) -> None:
    """Each large payload `rounds` times into the receiver (Redis emptied before each)
    and into the floor: the median, the spread and every time."""
    hook = "/webhook/alertmanager"
    for size in (1000, 10000):
        mine_t = big(f"{ours.url}{hook}", size, rounds, flush)
        base_t = big(f"{floor.url}{hook}", size, rounds, lambda: None)
        each = " ".join(f"{t:.3f}" for t in mine_t)
        print(
            f"{size:>6,} alerts: receiver median {statistics.median(mine_t):.3f} s "
            f"(min {min(mine_t):.3f}, max {max(mine_t):.3f}), floor median "
            f"{statistics.median(base_t):.3f} s, "
            f"{statistics.median(mine_t) / statistics.median(base_t):.1f}x floor; each: {each}"
        )


def bench(singles: int, new_tenants: int, rounds: int, only_payloads: bool = False) -> None:
    redis_server = RedisServer().start()
    client = redis.Redis.from_url(redis_server.url)
    env = {**TOKENS_ENV, "REDIS_URL": redis_server.url, "GUARD_MAX_ISOLATED_PERCENT": "100"}
    ours = gunicorn("receiver:create_app()", env, WORKERS).start()
    floor = gunicorn("bench.floor_app:create_app()", env, WORKERS).start()
    try:
        print(f"gunicorn: {WORKERS} sync workers per server; client: {CONCURRENCY} threads;")
        print(f"{os.cpu_count()} CPUs shared by the client, both servers and redis-server\n")
        hook = "/webhook/alertmanager"
        warm = [isolate_alert(f"w{i}") for i in range(100)]
        for server in (ours, floor):
            load(poster(f"{server.url}{hook}", warm), len(warm), CONCURRENCY)
        client.flushall()
        if only_payloads:
            payloads(ours, floor, rounds, client.flushall)
            return

        fresh = [isolate_alert(f"s{i}") for i in range(new_tenants)]
        again = [fresh[i % new_tenants] for i in range(singles)]
        base, base_s = measured(floor, hook, poster(f"{floor.url}{hook}", again), singles, 8)
        new, new_s = measured(ours, hook, poster(f"{ours.url}{hook}", fresh), new_tenants, 8)
        dup, dup_s = measured(ours, hook, poster(f"{ours.url}{hook}", again), singles, 8)
        print(line("floor: 1 alert", base) + base_s)
        print(line(f"receiver: 1 alert, {new_tenants} new tenants", new, base) + new_s)
        print(line("receiver: 1 alert, duplicate", dup, base) + dup_s)

        def admission(url: str) -> Callable[[Session, int], Answer]:
            return lambda session, i: session.get(
                f"{url}/api/v1/tenants/s{i % new_tenants}/admission", headers=READER, timeout=10
            )

        ask = "/api/v1/tenants/"
        for threads in (1, CONCURRENCY):
            base, base_s = measured(floor, ask, admission(floor.url), singles, threads)
            mine, mine_s = measured(ours, ask, admission(ours.url), singles, threads)
            print(line(f"floor: admission, {threads} at a time", base) + base_s)
            print(line(f"receiver: admission, {threads} at a time", mine, base) + mine_s)

        payloads(ours, floor, rounds, client.flushall)
    finally:
        ours.stop()
        floor.stop()
        redis_server.stop()


class Timers:
    """Wall time spent inside chosen functions, by label, while installed."""

    def __init__(self, targets: list[tuple[Any, str, str]]) -> None:
        self.targets = targets
        self.spent: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        for owner, attr, label in self.targets:
            original = getattr(owner, attr)
            self.saved.append((owner, attr, original))
            setattr(owner, attr, self._timed(original, label))

    def remove(self) -> None:
        for owner, attr, original in reversed(self.saved):
            setattr(owner, attr, original)
        self.saved = []

    def _timed(self, original: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] += time.perf_counter() - start
                self.calls[label] += 1

        return timed

    def report(self, total: float) -> None:
        for _, _, label in self.targets:
            spent = self.spent[label]
            print(
                f"  {label:<44} {spent:8.3f} s  {spent / total:6.1%}  ({self.calls[label]} calls)"
            )
        self.spent.clear()
        self.calls.clear()


def profile(singles: int) -> None:
    """The receiver in-process (Flask test client) on a real redis-server: where the
    time goes by step (wall clock, no profiler), then cProfile's top functions."""
    from receiver import correlate, create_app, followups, logs, pipeline
    from receiver.api import webhook
    from receiver.config import load_settings
    from receiver.notify import dispatch
    from receiver.store.client import open_client
    from receiver.store.incidents import IncidentStore
    from receiver.store.scopes import ScopeStore
    from receiver.store.slots import SlotStore

    redis_server = RedisServer().start()
    handler = logs.configure("INFO")
    handler.setStream(open(os.devnull, "w"))  # type: ignore[attr-defined]  # noqa: SIM115
    try:
        # The receiver's own client, as deployed: no SCRIPT EXISTS before each
        # pipeline, and its packer (redis-py's own client does both differently).
        client = open_client(redis_server.url, 5.0)
        env = {**TOKENS_ENV, "REDIS_URL": redis_server.url, "GUARD_MAX_ISOLATED_PERCENT": "100"}
        app = create_app({"SETTINGS": load_settings(env), "REDIS_CLIENT": client, "SWEEPER": False})
        test = app.test_client()
        hook = "/webhook/alertmanager"
        timers = Timers(
            [
                (webhook, "json_body", "request body: json.loads"),
                (webhook, "load", "validation (NotificationSchema.load)"),
                (pipeline, "ingest", "ingest (breakers)"),
                (SlotStore, "acquire_many", "  of which guard slots, 1 round trip"),
                (ScopeStore, "commit", "  of which ScopeStore.commit (pipelined Lua)"),
                (pipeline, "update", "correlate.update (incident board)"),
                (IncidentStore, "board", "  of which board read (turn, headers, entries)"),
                (IncidentStore, "commit", "  of which board commit (Lua)"),
                (correlate, "all_tiers", "  of which all_tiers (every known tenant)"),
                (followups, "drain_quietly", "notify drain (outbox -> deliveries)"),
                (dispatch, "_states", "  of which breaker states of incident tenants"),
                (webhook, "jsonify", "reply: jsonify"),
                (ScopeStore, "read", "ScopeStore.read, any caller (pipelined)"),
            ]
        )

        def new_tenants() -> None:
            for i in range(singles):
                test.post(hook, json=isolate_alert(f"p{i}"), headers=WEBHOOK)

        def duplicates() -> None:
            for i in range(singles):
                test.post(hook, json=isolate_alert(f"p{i}"), headers=WEBHOOK)

        def payload_10k() -> None:
            test.post(hook, json=grouped(10000, "q"), headers=WEBHOOK)

        def payload_1k() -> None:
            test.post(hook, json=grouped(1000, "r"), headers=WEBHOOK)

        def admissions() -> None:
            for i in range(singles):
                test.get(f"/api/v1/tenants/p{i}/admission", headers=READER)

        cases = [
            (f"{singles} single-alert posts, new tenants", new_tenants),
            (f"{singles} single-alert posts, duplicates", duplicates),
            (f"{singles} admission checks", admissions),
            ("one 1,000-alert payload (fresh Redis)", payload_1k),
            ("one 10,000-alert payload (fresh Redis)", payload_10k),
        ]
        for profiled in (False, True):
            client.flushall()
            for name, case in cases:
                if "fresh" in name:
                    client.flushall()
                if profiled:
                    profiler = cProfile.Profile()
                    profiler.runcall(case)
                    print(f"\n=== cProfile: {name} ===")
                    stats = pstats.Stats(profiler).sort_stats("tottime")
                    stats.print_stats(15)
                    continue
                timers.install()
                start = time.perf_counter()
                case()
                total = time.perf_counter() - start
                timers.remove()
                print(f"\n=== {name}: {total:.3f} s ===")
                timers.report(total)
    finally:
        logging.getLogger().removeHandler(handler)
        redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--singles", type=int, default=2000, help="posts and checks per run")
    parser.add_argument("--new", type=int, default=300, help="tenants failing one after another")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each large payload")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--payloads", action="store_true", help="the large payloads only")
    args = parser.parse_args()
    if args.profile:
        profile(min(args.singles, 500))
    else:
        bench(args.singles, args.new, args.rounds, only_payloads=args.payloads)


if __name__ == "__main__":
    main()
