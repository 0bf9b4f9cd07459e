"""A simulated multi-tenant platform: the exporter Prometheus scrapes and the gateway
that asks the receiver before serving a tenant.

Every tick it generates each tenant's queries (`qps`, a share `error_ratio` of them
failing) and counts those the gateway let through in `rag_queries_total` and
`rag_query_errors_total` on `GET /metrics`. The gateway asks the receiver's admission
API once per tenant per tick and serves all of the tick's queries (closed, disabled),
none (open, forced_open) or the probe share (half_open). `POST /control` changes a
tenant or the pool's capacity; `GET /state` shows the counters, the last tick's served
queries and errors, the last admission state and the pool.

Pool mode (`--capacity`, in pool-seconds per second) is the noisy neighbour: every
admitted query holds one shared backend pool for its tenant's `cost_s`. While the
admitted load L (served queries times their cost, per second) is within capacity,
tenants fail only at their own `error_ratio`. Beyond it every admitted query, whoever
sent it, waits L / capacity times as long and a share 1 - capacity / L of them time
out, on top of their own errors; so one tenant's expensive or surging queries fail
everyone until its breaker shuts it out. Pool mode also exports the histogram
`rag_query_duration_seconds` per tenant. Without a capacity there is no pool: no
histogram and no waits, though `GET /state` still reports the load.

Run: RECEIVER_API_TOKEN=... python -m receiver.simulator --port 9105 \\
       --receiver-url http://127.0.0.1:8080 --tenants t1:gold:5,t2:silver:0.5:0.02 \\
       --capacity 0.5
and `POST /control {"tenant_id": "t1", "qps": 250}` saturates the pool: L is 2.5 > 0.5.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from receiver.tenants import is_valid_tenant_id
from receiver.workload import (
    FULL_SHARE,
    TENANT_FIELDS,
    Pool,
    Tenant,
    carried,
    checked_capacity,
    escape,
    failure_share,
    histogram_lines,
    is_number,
    parse_tenants,
)

__all__ = ["Platform", "Tenant", "main", "parse_tenants"]


class Platform:
    """The simulated platform; `start()` serves it on loopback, `stop()` ends it."""

    def __init__(
        self,
        tenants: list[Tenant],
        *,
        receiver_url: str | None = None,
        api_token: str | None = None,
        tick_s: float = 1.0,
        probe_percent: float = 10.0,
        fail_open: bool = True,
        seed: int | None = None,
        capacity_pool_s: float | None = None,
    ) -> None:
        self.tenants = {t.tenant_id: t for t in tenants}
        # The pool's capacity now and the load the last tick admitted into it.
        self.pool = Pool(checked_capacity(capacity_pool_s))
        self.receiver_url = receiver_url.rstrip("/") if receiver_url else None
        self.tick_s = tick_s
        self.probe_share = probe_percent / 100
        self.fail_open = fail_open
        self.rng = random.Random(seed) if seed is not None else None
        self.lock = threading.Lock()
        self.session = requests.Session()
        if api_token:
            self.session.headers["Authorization"] = f"Bearer {api_token}"
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Platform:
        server = self._server = ThreadingHTTPServer((host, port), _handler(self))
        server.daemon_threads = True
        self._threads = [
            threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True),
            threading.Thread(target=self._run, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.session.close()

    def control(self, change: dict[str, Any]) -> dict[str, Any]:
        """Change the pool (`capacity_pool_s` alone, see `set_capacity`) or change (or
        create) a tenant: any of `tier`, `qps`, `error_ratio`, `cost_s`."""
        if "capacity_pool_s" in change:
            if change.keys() & TENANT_FIELDS:
                raise ValueError("capacity_pool_s is platform-wide: send it without tenant fields")
            return self.set_capacity(checked_capacity(change["capacity_pool_s"]))
        tenant_id = change.get("tenant_id")
        if not isinstance(tenant_id, str) or not is_valid_tenant_id(tenant_id):
            raise ValueError("tenant_id: 1-64 letters, digits, '.', '_' or '-'")
        ratio, qps, tier = change.get("error_ratio"), change.get("qps"), change.get("tier")
        cost_s = change.get("cost_s")
        if ratio is not None and not (is_number(ratio) and 0 <= ratio <= 1):
            raise ValueError("error_ratio: a number from 0 to 1")
        if qps is not None and not (is_number(qps) and qps >= 0):
            raise ValueError("qps: a number of at least 0")
        if cost_s is not None and not (is_number(cost_s) and cost_s >= 0):
            raise ValueError("cost_s: a number of at least 0")
        if tier is not None and not (isinstance(tier, str) and tier):
            raise ValueError("tier: a non-empty string")
        with self.lock:
            tenant = self.tenants.setdefault(tenant_id, Tenant(tenant_id, "bronze", 0.0))
            tenant.error_ratio = tenant.error_ratio if ratio is None else float(ratio)
            tenant.qps = tenant.qps if qps is None else float(qps)
            tenant.cost_s = tenant.cost_s if cost_s is None else float(cost_s)
            tenant.tier = tier or tenant.tier
            return tenant.public()

    def set_capacity(self, capacity_pool_s: float | None) -> dict[str, Any]:
        """Resize the pool from the next tick on; None ends pool mode (and the histogram)."""
        with self.lock:
            self.pool = Pool(checked_capacity(capacity_pool_s), self.pool.load_pool_s)
            return self.pool.public()

    def state(self) -> dict[str, Any]:
        """`pool` is there with or without a capacity: the load helps choose one."""
        with self.lock:
            return {
                "tenants": {i: t.public() for i, t in self.tenants.items()},
                "pool": self.pool.public(),
            }

    def metrics(self) -> str:
        lines = []
        # Under the lock, so that a scrape never sees half a tick.
        with self.lock:
            tenants = list(self.tenants.values())
            for name, kind, help_text, value in (
                ("rag_queries_total", "counter", "Queries served.", lambda t: t.queries),
                ("rag_query_errors_total", "counter", "Queries that failed.", lambda t: t.errors),
                ("rag_tenant_info", "gauge", "The tenant's tier.", lambda t: 1),
            ):
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                for t in tenants:
                    labels = f'tenant_id="{escape(t.tenant_id)}"'
                    if name == "rag_tenant_info":
                        labels += f',tier="{escape(t.tier)}"'
                    lines.append(f"{name}{{{labels}}} {value(t)}")
            if self.pool.capacity_pool_s is not None:
                lines += histogram_lines(tenants)
        return "\n".join(lines) + "\n"

    def admission(self, tenant_id: str) -> str:
        if self.receiver_url is None:
            return "ungated"
        try:
            response = self.session.get(
                f"{self.receiver_url}/api/v1/tenants/{tenant_id}/admission", timeout=(0.5, 1.0)
            )
            response.raise_for_status()
            return str(response.json()["state"])
        except (requests.RequestException, ValueError, KeyError):
            return "unreachable"

    def tick(self, elapsed_s: float) -> None:
        """Generate and admit `elapsed_s` seconds of every tenant's queries, then serve
        them: the pool's load depends on every tenant's admitted queries at once."""
        with self.lock:
            tenant_ids = list(self.tenants)
        admissions: dict[str, str] = {}
        state = ""
        for tenant_id in tenant_ids:
            # One timeout per tick, not one per tenant, while the receiver is down.
            state = "unreachable" if state == "unreachable" else self.admission(tenant_id)
            admissions[tenant_id] = state
        with self.lock:
            served: dict[str, int] = {}
            for tenant_id, state in admissions.items():
                t = self.tenants[tenant_id]
                t.admission = state
                offered, t._query_carry = carried(t.qps * elapsed_s, t._query_carry)
                served[tenant_id], t._served_carry = carried(
                    offered * self._share(state), t._served_carry
                )
                t.rejected += offered - served[tenant_id]
            load = sum(n * self.tenants[i].cost_s for i, n in served.items())
            pool = self.pool = Pool(
                self.pool.capacity_pool_s, load / elapsed_s if elapsed_s > 0 else 0.0
            )
            for tenant_id, n in served.items():
                t = self.tenants[tenant_id]
                share = failure_share(t.error_ratio, pool.timeout_share)
                if self.rng is not None:
                    failed = sum(self.rng.random() < share for _ in range(n))
                else:
                    failed, t._error_carry = carried(n * share, t._error_carry)
                t.queries += n
                t.errors += failed
                t.last_served, t.last_errors = n, failed
                if pool.capacity_pool_s is not None:
                    t._durations.observe(t.cost_s * pool.stretch, n)

    def _share(self, state: str) -> float:
        """The share of a tick's queries the gateway serves in this admission state."""
        if state in FULL_SHARE:
            return FULL_SHARE[state]
        if state == "unreachable":
            return 1.0 if self.fail_open else 0.0
        return self.probe_share  # half_open, as the admission API grants it per request

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(max(0.0, last + self.tick_s - time.monotonic())):
            now = time.monotonic()
            self.tick(now - last)
            last = now


def _handler(platform: Platform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: str, content_type: str = "application/json") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, platform.metrics(), "text/plain; version=0.0.4; charset=utf-8")
            elif self.path == "/state":
                self._send(200, json.dumps(platform.state()))
            else:
                self._send(404, json.dumps({"error": "not found"}))

        def do_POST(self) -> None:
            if self.path != "/control":
                self._send(404, json.dumps({"error": "not found"}))
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                self._send(200, json.dumps(platform.control(body)))
            except ValueError as exc:
                self._send(400, json.dumps({"error": str(exc)}))

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: Prometheus scrapes and control calls are not news."""

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9105)
    parser.add_argument("--receiver-url", help="ask this receiver's admission API (token: env)")
    parser.add_argument("--tenants", default="t1:gold:5", help="id:tier:qps[:cost_s],...")
    parser.add_argument(
        "--capacity",
        type=float,
        metavar="POOL_S",
        help="pool mode: the shared backend's pool-seconds per second",
    )
    parser.add_argument("--tick-s", type=float, default=1.0)
    parser.add_argument("--fail-closed", action="store_true", help="no traffic if unreachable")
    parser.add_argument("--seed", type=int, help="draw each query's failure at random")
    args = parser.parse_args(argv)
    try:
        tenants = parse_tenants(args.tenants)
    except ValueError as exc:
        parser.error(f"--tenants: {exc}")
    if args.capacity is not None and not (math.isfinite(args.capacity) and args.capacity > 0):
        parser.error("--capacity: a number above 0")
    platform = Platform(
        tenants,
        receiver_url=args.receiver_url,
        api_token=os.environ.get("RECEIVER_API_TOKEN"),
        tick_s=args.tick_s,
        probe_percent=float(os.environ.get("BREAKER_HALF_OPEN_PROBE_PERCENT") or 10),
        fail_open=not args.fail_closed,
        seed=args.seed,
        capacity_pool_s=args.capacity,
    ).start(args.host, args.port)
    print(f"platform simulator on {platform.url}", flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    platform.stop()


if __name__ == "__main__":
    main()
