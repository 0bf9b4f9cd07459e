"""The failover gap on Sentinel, for `bench.topologies`: webhooks for new tenants at a
steady rate while the primary is SIGKILLed; each delivery placed where it was
answered, from the kill. The gap is from the first failed delivery to the first
successful one after it; deliveries that wait out the failover inside the receiver's
retry budget do not fail, so the longest time without any successful answer is
given too."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter

import redis
import requests

from bench.deployments import HOOK, JOINS, Deployment, receiver
from bench.storm import rate
from tests.conftest import WEBHOOK, isolate_alert
from tests.redis_nodes import command
from tests.topologies import SentinelGroup

Figures = dict[str, object]
SENDERS = 4
STEADY_S = 3.0
AFTER_S = 3.0
"""How long successes are watched after a sentinel names the new primary."""


def run(d: Deployment, per_s: float, limit_s: float) -> Figures:
    """Webhooks at `per_s` from SENDERS threads; the primary SIGKILLed after STEADY_S."""
    group = d.group
    assert isinstance(group, SentinelGroup)
    server = receiver(d, JOINS)
    url = f"{server.url}{HOOK}"
    answers: list[tuple[float, float, int]] = []
    stop = threading.Event()
    numbers = itertools.count()

    def sender() -> None:
        with requests.Session() as session:
            due = time.perf_counter()
            while not stop.is_set():
                body = isolate_alert(f"fo{next(numbers):05d}")
                start = time.perf_counter()
                try:
                    status = session.post(url, json=body, headers=WEBHOOK, timeout=30).status_code
                except requests.RequestException:
                    status = 0
                answers.append((start, time.perf_counter(), status))
                due += SENDERS / per_s
                stop.wait(max(0.0, due - time.perf_counter()))

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    switched: float | None = None
    try:
        for thread in threads:
            thread.start()
        time.sleep(STEADY_S)
        killed = time.perf_counter()
        old = group.kill_primary()
        while time.perf_counter() < killed + limit_s:
            names = {named(group, port) for port in group.sentinel_ports} - {None, old}
            if switched is None and names:
                switched = time.perf_counter()
            served = [end for _, end, status in answers if status == 200]
            if switched is not None and served and max(served) > switched + AFTER_S:
                break
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=40)
        server.stop()
    return gap(answers, killed, switched)


def named(group: SentinelGroup, port: int) -> tuple[str, int] | None:
    """The primary one sentinel names now, if it answers."""
    try:
        host, primary = command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", group.service)
    except redis.RedisError:
        return None
    return host, int(primary)


def gap(answers: list[tuple[float, float, int]], killed: float, switched: float | None) -> Figures:
    """Times from the kill, each delivery placed where it was answered."""
    answers = sorted(answers, key=lambda a: a[1])
    ok = [end for _, end, status in answers if status == 200]
    failed = [end for _, end, status in answers if status != 200]
    before, after = [e for e in ok if e < killed], [e for e in ok if e >= killed]
    out: Figures = {
        "sent_per_s": rate([a for a in answers if a[1] < killed]),
        "failed": len(failed),
        "statuses": dict(Counter(str(status) for *_, status in answers if status != 200)),
        "new_primary_named_s": None if switched is None else switched - killed,
        "no_success_s": max(b - a for a, b in itertools.pairwise([before[-1], *after])),
        "slowest_ok_s": max(e - s for s, e, st in answers if st == 200 and e >= killed),
    }
    if not failed:
        return out | {"gap_s": 0.0}  # every delivery waited the failover out
    recovered = [end for end in ok if end > failed[0]]
    return out | {
        "first_failed_s": failed[0] - killed,
        "last_failed_s": failed[-1] - killed,
        "gap_s": recovered[0] - failed[0] if recovered else None,
    }
