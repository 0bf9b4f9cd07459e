"""The console's fleet with many tenants, in-process on a real redis-server: the
server-side time to render the fleet page, and to answer the one JSON document its
poll asks for every few seconds.

Tenants come from a registry file (tiers spread over the four); a tenth of them
are forced open and another tenth forced open then closed, so their breakers
have state and transitions to read.

Run: .venv/bin/python -m bench.console [--tenants N] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import redis

from receiver import create_app
from receiver.breaker import Action
from receiver.config import Settings
from receiver.operator import act
from receiver.services import Services
from tests.conftest import ADMIN_TOKEN, API_TOKEN, WEBHOOK_TOKEN
from tests.console_helpers import sign_in
from tests.servers import RedisServer

TIERS = ("platinum", "gold", "silver", "bronze")


def registry(tenants: int, folder: Path) -> Path:
    path = folder / "tenants.yml"
    lines = [f"  t{i:05d}: {{tier: {TIERS[i % 7 % 4]}}}" for i in range(tenants)]
    path.write_text("tenants:\n" + "\n".join(lines) + "\n")
    return path


def give_state(services: Services, tenants: int, now: float) -> None:
    for i in range(0, tenants, 10):
        tenant = f"t{i:05d}"
        act(services.store, tenant, Action.FORCE_OPEN, "bench", services.settings.breaker, now)
        if i % 20 == 0:
            act(services.store, tenant, Action.FORCE_CLOSE, "bench", services.settings.breaker, now)


def timed(web: object, path: str, rounds: int) -> tuple[float, float, int]:
    """Median and worst seconds over `rounds` requests, and the body's size."""
    times, size = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        reply = web.get(path)  # type: ignore[attr-defined]
        body = reply.get_data()
        times.append(time.perf_counter() - started)
        assert reply.status_code == 200, reply.status_code
        size = len(body)
    return statistics.median(times), max(times), size


def run(tenants: int, rounds: int) -> None:
    server = RedisServer().start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(
                WEBHOOK_TOKEN,
                API_TOKEN,
                ADMIN_TOKEN,
                redis_url=server.url,
                tenants_file=str(registry(tenants, Path(folder))),
            )
            app = create_app({"SETTINGS": settings, "REDIS_CLIENT": client, "SWEEPER": False})
        give_state(app.extensions["blast_radius"], tenants, time.time())
        web = app.test_client()
        sign_in(web, API_TOKEN)
        for path in ("/", "/console/fleet.json"):
            median, worst, size = timed(web, path, rounds)
            print(
                f"{tenants} tenants GET {path}: median {median * 1000:.0f} ms, "
                f"worst {worst * 1000:.0f} ms over {rounds}, {size / 1e6:.2f} MB"
            )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    run(args.tenants, args.rounds)


if __name__ == "__main__":
    main()
