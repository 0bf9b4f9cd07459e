"""The gateway's cost, side by side in one run (docs/benchmarks.md, "Gateway").

- requests/s through nginx with the shipped `deploy/nginx/blast-radius.conf`
  (auth_request, 1 s auth cache) against the same nginx with `auth_request off` (the
  floor), 1,000 tenants picked uniformly at random, 10 of them isolated, in front of
  the tests' tiny upstream; load from `--procs` processes of 16 keep-alive connections each;
- `/gate` and `/api/v1/tenants/<id>/admission` straight to gunicorn, p50/p99 as the
  client sees them under 8 clients;
- the feed with 100,000 known tenants and 100 isolated: bytes, server time
  (in-process, the Flask app on the same redis-server) and Redis commands per call;
- the Python client's in-process decision time.

Everything shares the machine's cores with the client. Run:
  .venv/bin/python -m bench.gateway [--seconds 10] [--procs 4]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import redis
import requests

from receiver import create_app
from receiver.admission_client import AdmissionClient
from receiver.breaker import Breaker, State
from receiver.config import load_settings
from receiver.store import Change, ScopeStore
from receiver.store import keys as k
from tests.conftest import API_TOKEN, READER, TOKENS_ENV
from tests.servers import Nginx, Receiver, RedisServer, Upstream

TENANTS = 1000
FEW_TENANTS = 100
"""Also measured: few enough tenants that the receiver keeps up with one check per
tenant per second."""
ISOLATED = 10
CLIENTS = 8
CONNECTIONS = 16
"""Keep-alive connections per load process: a gateway serves many clients at once, and
a request waiting on the receiver holds only its own connection."""


def isolate(client: redis.Redis, tenants: list[str]) -> None:
    """Open breakers committed through the real script, so the deny-list is kept."""
    store = ScopeStore(client, log_cap=100, seen_ttl_s=86400.0)
    now = time.time()
    opened = Breaker(State.OPEN, opened_at=now, open_count=1, firing=frozenset({"fp"}))
    for start in range(0, len(tenants), 500):
        batch = tenants[start : start + 500]
        store.commit([Change(t, 0, breaker=opened) for t in batch], now, known=batch)


def _connection(port: int, seconds: float, seed: int, tenants: int) -> tuple[int, int]:
    """One keep-alive client connection for `seconds`: requests made, and refused."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    done = denied = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.request("GET", "/v1/orders", headers={"X-Tenant-ID": f"t{rng.randrange(tenants)}"})
        reply = conn.getresponse()
        reply.read()
        done += 1
        denied += reply.status == 503
    conn.close()
    return done, denied


def _hammer(port: int, seconds: float, seed: int, tenants: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    def one(i: int) -> tuple[int, int]:
        return _connection(port, seconds, seed * 1000 + i, tenants)

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        results = list(pool.map(one, range(CONNECTIONS)))
    out.put((sum(r[0] for r in results), sum(r[1] for r in results)))


def throughput(nginx: Nginx, seconds: float, procs: int, tenants: int) -> tuple[float, float]:
    """Requests/s through `nginx` and the share refused, from `procs` processes, each
    request for one of `tenants` (t0..) at random."""
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [
        multiprocessing.Process(target=_hammer, args=(nginx.port, seconds, i, tenants, out))
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    done = sum(r[0] for r in results)
    return done / seconds, sum(r[1] for r in results) / max(done, 1)


def latencies(call: Callable[[requests.Session, int], None], n: int) -> tuple[float, float]:
    """p50 and p99 in ms of `n` calls from CLIENTS threads."""
    sessions = [requests.Session() for _ in range(CLIENTS)]

    def timed(i: int) -> float:
        started = time.perf_counter()
        call(sessions[i % CLIENTS], i)
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(CLIENTS) as pool:
        times = sorted(pool.map(timed, range(n)))
    return statistics.median(times), times[int(len(times) * 0.99)]


def feed_figures(redis_url: str) -> tuple[int, float, dict[str, int]]:
    """Bytes, median server time (ms) and Redis commands of one feed call, 100,000
    known tenants and 100 isolated."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushall()
    client.zadd(k.TENANTS, {f"k{i}": 1.0 for i in range(100_000)})
    isolate(client, [f"k{i}" for i in range(100)])
    settings = load_settings({**TOKENS_ENV, "REDIS_URL": redis_url})
    app = create_app({"SETTINGS": settings, "REDIS_CLIENT": client, "SWEEPER": False})
    web = app.test_client()
    times = []
    for _ in range(50):
        started = time.perf_counter()
        web.get("/api/v1/admission", headers=READER)
        times.append((time.perf_counter() - started) * 1000)
    client.config_resetstat()
    size = len(web.get("/api/v1/admission", headers=READER).data)
    stats = client.info("commandstats")
    commands = {
        name.removeprefix("cmdstat_"): int(s["calls"])
        for name, s in stats.items()
        if not name.startswith("cmdstat_config")
    }
    return size, statistics.median(times), commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=4)
    args = parser.parse_args()

    store = RedisServer().start()
    upstream = Upstream().start()
    receiver = Receiver({**TOKENS_ENV, "REDIS_URL": store.url}, workers=3).start()
    address = receiver.url.removeprefix("http://")
    gated = Nginx.gateway(upstream.address, address, API_TOKEN).start()
    floor = Nginx.gateway(upstream.address, address, API_TOKEN)
    (floor.dir / "site.conf").write_text(
        (floor.dir / "site.conf")
        .read_text()
        .replace("auth_request /_blast_radius_gate;", "auth_request off;")
    )
    floor.start()
    client = redis.Redis.from_url(store.url, decode_responses=True)
    try:
        client.zadd(k.TENANTS, {f"t{i}": 1.0 for i in range(TENANTS)})
        isolate(client, [f"t{i}" for i in range(ISOLATED)])
        for tenants in (TENANTS, FEW_TENANTS):
            rates = []
            for name, nginx in (("floor (no auth)", floor), ("auth_request, 1 s cache", gated)):
                rate, refused = throughput(nginx, args.seconds, args.procs, tenants)
                rates.append(rate)
                print(f"nginx {name}, {tenants} tenants: {rate:,.0f} req/s, {refused:.1%} refused")
            print(f"  auth keeps {rates[1] / rates[0]:.0%} of the floor")

        def gate(session: requests.Session, i: int) -> None:
            headers = {**READER, "X-Tenant-ID": f"t{i % TENANTS}"}
            session.get(f"{receiver.url}/gate", headers=headers, timeout=10)

        def admission(session: requests.Session, i: int) -> None:
            url = f"{receiver.url}/api/v1/tenants/t{i % TENANTS}/admission"
            session.get(url, headers=READER, timeout=10)

        for name, call in (("/gate", gate), ("/api/v1/tenants/<id>/admission", admission)):
            p50, p99 = latencies(call, 4000)
            print(f"{name}, {CLIENTS} clients: p50 {p50:.2f} ms, p99 {p99:.2f} ms")

        with AdmissionClient(receiver.url, API_TOKEN, refresh_s=3600.0) as admit:
            admit.allow("t0")
            n = 200_000
            started = time.perf_counter()
            for i in range(n):
                admit.allow(f"t{i % TENANTS}")
            per_call_us = (time.perf_counter() - started) / n * 1e6
        print(f"client in-process decision: {per_call_us:.2f} us per call")

        size, server_ms, commands = feed_figures(store.url)
        print(
            f"feed, 100,000 known, 100 isolated: {size:,} bytes, server median "
            f"{server_ms:.2f} ms, Redis commands per call {commands}"
        )
    finally:
        client.close()
        floor.stop()
        gated.stop()
        receiver.stop()
        upstream.stop()
        store.stop()


if __name__ == "__main__":
    main()
