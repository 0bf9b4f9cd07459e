"""The size and time of a `/metrics` scrape with many known tenants, in-process on a
real redis-server: the Redis-derived gauges dominate, one set per tenant.

Run: .venv/bin/python -m bench.scrape [--tenants N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import redis

from receiver import create_app
from receiver.config import Settings
from tests.conftest import ADMIN_TOKEN, API_TOKEN, WEBHOOK_TOKEN
from tests.servers import RedisServer


def run(tenants: int, rounds: int = 5) -> None:
    server = RedisServer().start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        settings = Settings(WEBHOOK_TOKEN, API_TOKEN, ADMIN_TOKEN, redis_url=server.url)
        app = create_app({"SETTINGS": settings, "REDIS_CLIENT": client, "SWEEPER": False})
        app.extensions["blast_radius"].store.add_known([f"t{i:05d}" for i in range(tenants)], 0)
        web = app.test_client()
        times, size, series = [], 0, 0
        for _ in range(rounds):
            started = time.perf_counter()
            body = web.get("/metrics").get_data(as_text=True)
            times.append(time.perf_counter() - started)
            size = len(body.encode())
            series = sum(
                1 for line in body.splitlines() if line.startswith("blast_radius_breaker_state{")
            )
        print(
            f"{tenants} tenants: {series} breaker-state series, {size / 1e6:.2f} MB, "
            f"median {statistics.median(times) * 1000:.0f} ms over {rounds} scrapes"
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    run(parser.parse_args().tenants)


if __name__ == "__main__":
    main()
