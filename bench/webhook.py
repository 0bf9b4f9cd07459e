"""Webhook latency on the deployed shape: gunicorn (2 workers) and a real redis-server.

Run: .venv/bin/python -m bench.webhook [--rounds N]
Prints p50/p95/max for a one-alert delivery and a 1,000-alert grouped delivery.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import requests

from tests.conftest import TOKENS_ENV, WEBHOOK, isolate_alert
from tests.servers import Receiver, RedisServer


def grouped(size: int, round_no: int) -> dict[str, Any]:
    body = isolate_alert("t0")
    template = body["alerts"][0]
    body["alerts"] = []
    for i in range(size):
        alert = {**template, "labels": {**template["labels"], "tenant_id": f"t{i}"}}
        alert["fingerprint"] = f"fp{i}"
        alert["startsAt"] = f"2027-01-15T08:{round_no % 60:02d}:{round_no // 60 % 60:02d}Z"
        body["alerts"].append(alert)
    return body


def measure(url: str, bodies: list[dict[str, Any]]) -> list[float]:
    session = requests.Session()
    times = []
    for body in bodies:
        start = time.perf_counter()
        response = session.post(url, json=body, headers=WEBHOOK, timeout=60)
        times.append(time.perf_counter() - start)
        response.raise_for_status()
    return times


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    print(
        f"{name:<28} n={len(times):<4} p50={statistics.median(times) * 1000:8.2f} ms "
        f"p95={p95 * 1000:8.2f} ms max={ordered[-1] * 1000:8.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    redis_server = RedisServer().start()
    receiver = Receiver({**TOKENS_ENV, "REDIS_URL": redis_server.url}, workers=2).start()
    try:
        url = f"{receiver.url}/webhook/alertmanager"
        singles = [
            isolate_alert(f"s{i}", starts_at=f"2027-01-15T08:00:{i % 60:02d}Z")
            for i in range(args.rounds)
        ]
        measure(url, singles[:10])
        report("1 alert, new tenant", measure(url, singles[10:]))
        report("1 alert, duplicate", measure(url, singles[10:]))
        big = [grouped(1000, r) for r in range(max(args.rounds // 10, 5))]
        report("1,000 alerts (1,000 tenants)", measure(url, big))
    finally:
        receiver.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
