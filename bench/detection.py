"""Detection latency of the live pipeline, onset to isolation, and recovery time.

The simulated platform (`receiver.simulator`) is scraped every 10s by Prometheus
2.x with the shipped rules, which alert through Alertmanager with the shipped routes
to the receiver under gunicorn on redis-server; the simulator, as the gateway, obeys
the receiver's admission answers. Breaker and guard settings are the defaults.

Each onset takes a fresh tenant from 0% to 95% failed queries (at a random moment,
so its phase against scrapes and rule evaluations varies) and measures:

- detection: onset -> breaker `open` seen through the API (polled every 0.25s);
- recovery: heal (right after isolation) -> breaker `closed` seen through the API.

Healthy tenants (1% errors) and a quiet tenant (0.2 query/s, 50% errors) run the
whole time; any trip of theirs, held back by the guard or not, is a false isolation.

Run: .venv/bin/python -m bench.detection [--onsets N] [--healthy N] [--seed N]
     [--scenario single|noisy-neighbour]   (noisy-neighbour: see bench/noisy.py)
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from typing import Any

import requests

from receiver.simulator import Tenant
from tests.conftest import READER
from tests.live import LiveStack
from tests.servers import Receiver

POLL_S = 0.25
TIERS = ("platinum", "gold", "silver", "bronze")


class Poller:
    """Every breaker state through the list API, with when each was first seen."""

    def __init__(self, receiver_url: str) -> None:
        self.url = f"{receiver_url}/api/v1/tenants"
        self.session = requests.Session()
        self.session.headers.update(READER)
        self.states: dict[str, str] = {}
        self.changes: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            reply = self.session.get(self.url, params={"per_page": 500}, timeout=5).json()
            seen = time.time()
            with self.lock:
                for item in reply["items"]:
                    tenant_id, state = item["tenant_id"], item["breaker"]["state"]
                    if self.states.get(tenant_id, "closed") != state:
                        self.changes.append((seen, tenant_id, state))
                    self.states[tenant_id] = state

    def first(self, tenant_id: str, state: str, after: float) -> float | None:
        with self.lock:
            return next(
                (t for t, i, s in self.changes if i == tenant_id and s == state and t >= after),
                None,
            )

    def wait(self, tenant_id: str, state: str, after: float, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            seen = self.first(tenant_id, state, after)
            if seen is not None:
                return seen
            time.sleep(POLL_S / 2)
        raise TimeoutError(f"{tenant_id} not {state} within {timeout_s}s")


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = (
        statistics.quantiles(ordered, n=20, method="inclusive")[18]
        if len(values) > 1
        else ordered[0]
    )
    return (
        f"{name:<34} n={len(values):<3} p50={statistics.median(ordered):6.1f}s "
        f"p95={p95:6.1f}s max={ordered[-1]:6.1f}s min={ordered[0]:6.1f}s"
    )


def transitions(receiver: Receiver, tenant_id: str) -> list[dict[str, Any]]:
    url = f"{receiver.url}/api/v1/tenants/{tenant_id}"
    found: list[dict[str, Any]] = requests.get(url, headers=READER, timeout=5).json()["breaker"][
        "transitions"
    ]
    return found


def run(onsets: int, healthy: int, seed: int) -> None:
    rng = random.Random(seed)
    onset_ids = [f"onset-{i}" for i in range(onsets)]
    bystanders = [f"healthy-{i}" for i in range(healthy)] + ["quiet"]
    tenants = [Tenant(t, TIERS[i % 4], 5.0) for i, t in enumerate(onset_ids)]
    tenants += [Tenant(t, TIERS[i % 4], 5.0, error_ratio=0.01) for i, t in enumerate(bystanders)]
    tenants[-1].qps, tenants[-1].error_ratio = 0.2, 0.5
    stack = LiveStack.start(tenants, seed=seed)
    receiver, platform = stack.receiver, stack.platform
    poller = Poller(receiver.url).start()
    detected: list[float] = []
    recorded: list[float] = []
    heals: dict[str, float] = {}
    missed: list[str] = []
    onsets_at: dict[str, float] = {}
    try:
        print(f"stack up; {len(tenants)} tenants; warming up 40s", flush=True)
        time.sleep(40)
        for tenant_id in onset_ids:
            time.sleep(rng.uniform(0, 10))
            onset = onsets_at[tenant_id] = time.time()
            platform.control({"tenant_id": tenant_id, "error_ratio": 0.95})
            try:
                seen = poller.wait(tenant_id, "open", onset, 180)
            except TimeoutError:
                print(f"{tenant_id}: not isolated within 180s", flush=True)
                missed.append(tenant_id)
                continue
            finally:
                platform.control({"tenant_id": tenant_id, "error_ratio": 0.0})
                heals[tenant_id] = time.time()
            opened = transitions(receiver, tenant_id)[0]
            detected.append(seen - onset)
            recorded.append(opened["at"] - onset)
            print(
                f"{tenant_id}: open seen after {seen - onset:5.1f}s "
                f"(receiver opened it after {opened['at'] - onset:5.1f}s)",
                flush=True,
            )
        recovered = [
            poller.wait(tenant_id, "closed", heals[tenant_id], 600) - heals[tenant_id]
            for tenant_id in onset_ids
            if tenant_id not in missed
        ]
        logs = {t: transitions(receiver, t) for t in onset_ids + bystanders}
    finally:
        poller.stop()
        stack.stop()
    # Any trip of a bystander is false, held back by the guard (suppressed) or not;
    # so is a trip of a tenant before its onset, and a re-open of a healed tenant.
    trips = {t: [x for x in log if x["to"] == "open"] for t, log in logs.items()}
    false_trips = sum(len(trips[t]) for t in bystanders)
    false_trips += sum(1 for t in onset_ids for x in trips[t] if x["at"] < onsets_at[t])
    reopened = sum(1 for t in onset_ids for x in trips[t] if x["at"] > heals[t])
    held = sum(1 for t in onset_ids for x in trips[t] if x["suppressed"])
    print()
    print(summary("detection (open seen via API)", detected))
    print(summary("detection (receiver's opened_at)", recorded))
    print(summary("recovery (heal -> closed seen)", recovered))
    print(f"false isolations ({len(bystanders)} bystanders, onsets before theirs): {false_trips}")
    print(f"onsets not isolated: {len(missed)}; held back by the guard: {held}")
    print(f"re-opens of {onsets} healed tenants: {reopened}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onsets", type=int, default=8)
    parser.add_argument("--healthy", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scenario",
        choices=["single", "noisy-neighbour"],
        default="single",
        help="single: tenants failing on their own; noisy-neighbour: bench.noisy",
    )
    args = parser.parse_args()
    if args.onsets < 2:
        parser.error("--onsets must be at least 2")
    if args.scenario == "noisy-neighbour":
        from bench.noisy import run as run_noisy

        run_noisy(args.onsets, args.healthy, args.seed)
    else:
        run(args.onsets, args.healthy, args.seed)


if __name__ == "__main__":
    main()
