"""Noisy-neighbour detection, live: one tenant's load exhausts a shared pool and every
tenant fails, until the receiver isolates that tenant alone.

The stack of `bench.detection` (shipped rules, Alertmanager routes, default breaker
and guard settings) with the simulator in shared-pool mode: 20 tenants send 5
queries/s each holding the pool for 10 ms (1 pool-s/s in all), capacity 1.43 pool-s/s
(70% used). Four candidate culprits take turns; each onset makes one of them 100x as
expensive (odd onsets) or 50x as many queries (even onsets), at a random moment, then
heals it as soon as it is isolated and waits for the shared-failure alerts to
resolve. Measured per onset:

- onset -> the culprit's breaker `open` seen through the API (polled every 0.25s);
- onset -> the other tenants' error ratio in the simulator's last tick under 10%
  (what they experience, not a 30s window);
- innocent tenants isolated: any other tenant's breaker leaving `closed`, and trips
  held back (suppressed) as victims, counted apart.

Then `--outages` shared failures without a culprit (capacity down to 30% of the
load): tenants isolated (must be 0) and onset -> platform P0 seen through the API.

Run: .venv/bin/python -m bench.detection --scenario noisy-neighbour [--onsets N]
"""

from __future__ import annotations

import random
import time
from typing import Any

import requests

from bench.detection import Poller, summary, transitions
from receiver.simulator import Platform, Tenant
from tests.conftest import READER
from tests.live import LiveStack

TIERS = ("platinum", "gold", "silver", "bronze")
QPS, COST_S = 5.0, 0.01
CANDIDATES = 4
UTILIZATION = 0.7
SHARED_ALERTS = ("PlatformErrorRateHigh", "TenantSharedFailure", "TenantNoisyNeighbor")


def others_error_ratio(platform: Platform, culprit: str | None) -> float:
    tenants = platform.state()["tenants"]
    served = sum(t["last_served"] for i, t in tenants.items() if i != culprit)
    errors = sum(t["last_errors"] for i, t in tenants.items() if i != culprit)
    return errors / served if served else 0.0


def wait_for(check: Any, timeout_s: float, what: str, poll_s: float = 0.25) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.time()
        time.sleep(poll_s)
    raise TimeoutError(f"{what} not within {timeout_s}s")


def shared_alerts_firing(stack: LiveStack) -> bool:
    names = "|".join(SHARED_ALERTS)
    return bool(stack.prometheus.query(f'ALERTS{{alertname=~"{names}"}}'))


def platform_p0(receiver_url: str, since: float) -> bool:
    params: dict[str, str | float] = {"scope": "platform", "priority": "P0", "since": since}
    url = f"{receiver_url}/api/v1/incidents"
    reply = requests.get(url, headers=READER, params=params, timeout=5).json()
    return bool(reply["items"])


def run(onsets: int, healthy: int, seed: int, outages: int = 3) -> None:
    rng = random.Random(seed)
    candidates = [f"culprit-{i}" for i in range(CANDIDATES)]
    bystanders = [f"tenant-{i:02d}" for i in range(20 - CANDIDATES)]
    ids = candidates + bystanders
    tenants = [
        Tenant(t, TIERS[i % 4], QPS, error_ratio=0.01, cost_s=COST_S) for i, t in enumerate(ids)
    ]
    capacity = len(tenants) * QPS * COST_S / UTILIZATION
    stack = LiveStack.start(tenants, seed=seed, capacity_pool_s=capacity)
    platform = stack.platform
    poller = Poller(stack.receiver.url).start()
    opened: list[float] = []
    recovered: list[float] = []
    p0: list[float] = []
    culprits: dict[str, list[tuple[float, float]]] = {t: [] for t in candidates}
    outage_spans: list[tuple[float, float]] = []
    missed = 0
    try:
        print(f"stack up; {len(tenants)} tenants, capacity {capacity:.2f} pool-s/s", flush=True)
        baseline = "tenant_id:rag_shared_load:baseline_share30m"
        wait_for(lambda: len(stack.prometheus.query(baseline)) == len(ids), 300, "baselines", 2)
        for n in range(onsets):
            culprit = candidates[n % CANDIDATES]
            wait_for(
                lambda c=culprit: poller.states.get(c, "closed") == "closed", 600, "culprit closed"
            )
            time.sleep(rng.uniform(0, 10))
            expensive = n % 2 == 0
            change = {"cost_s": COST_S * 100} if expensive else {"qps": QPS * 50}
            onset = time.time()
            platform.control({"tenant_id": culprit, **change})
            try:
                seen = poller.wait(culprit, "open", onset, 180)
                back = wait_for(lambda c=culprit: others_error_ratio(platform, c) < 0.1, 60, "ok")
            except TimeoutError as exc:
                print(f"onset {n} ({culprit}): {exc}", flush=True)
                missed += 1
                seen = back = time.time()
            finally:
                platform.control({"tenant_id": culprit, "cost_s": COST_S, "qps": QPS})
            culprits[culprit].append((onset, time.time()))
            opened.append(seen - onset)
            recovered.append(back - onset)
            kind = "100x cost" if expensive else "50x queries"
            print(
                f"onset {n} ({culprit}, {kind}): open after {seen - onset:5.1f}s, "
                f"others under 10% errors after {back - onset:5.1f}s",
                flush=True,
            )
            wait_for(lambda: not shared_alerts_firing(stack), 300, "alerts resolved", 1)
        for n in range(outages):
            wait_for(lambda: all(s == "closed" for s in poller.states.values()), 600, "closed", 1)
            time.sleep(rng.uniform(0, 10))
            onset = time.time()
            platform.set_capacity(len(tenants) * QPS * COST_S * 0.3)
            try:
                found = wait_for(lambda o=onset: platform_p0(stack.receiver.url, o), 180, "P0")
                p0.append(found - onset)
                time.sleep(20)
            finally:
                platform.set_capacity(capacity)
                outage_spans.append((onset, time.time()))
            print(f"outage {n}: platform P0 after {p0[-1]:5.1f}s", flush=True)
            wait_for(lambda: not shared_alerts_firing(stack), 300, "alerts resolved", 1)
        logs = {t: transitions(stack.receiver, t) for t in ids}
    finally:
        poller.stop()
        stack.stop()
    innocent = held = 0
    for tenant_id, log in logs.items():
        for t in log:
            if t["to"] != "open":
                continue
            own = any(start <= t["at"] <= end + 5 for start, end in culprits.get(tenant_id, []))
            if t["suppressed"]:
                held += 1
            elif not own:
                innocent += 1
    in_outages = sum(
        1
        for log in logs.values()
        for t in log
        if t["to"] == "open"
        and not t["suppressed"]
        and any(s <= t["at"] <= e + 60 for s, e in outage_spans)
    )
    print()
    print(summary("onset -> culprit open (API)", opened))
    print(summary("onset -> others' errors < 10%", recovered))
    print(f"onsets not contained: {missed}")
    print(f"innocent tenants isolated: {innocent}; victims' trips held back: {held}")
    if p0:
        print(summary("outage onset -> platform P0 (API)", p0))
    print(f"tenants isolated during {outages} outages without a culprit: {in_outages}")
