"""A simulated multi-tenant platform: the exporter Prometheus scrapes and the gateway
that asks the receiver before serving a tenant.

Every tick it generates each tenant's queries (`qps`, a share `error_ratio` of them
failing) and counts those the gateway let through in `rag_queries_total` and
`rag_query_errors_total` on `GET /metrics`. The gateway asks the receiver's admission
API once per tenant per tick and serves all of the tick's queries (closed, disabled),
none (open, forced_open) or the probe share (half_open). `POST /control` changes a
tenant; `GET /state` shows the counters and the last admission state.

Run: RECEIVER_API_TOKEN=... python -m receiver.simulator --port 9105 \\
       --receiver-url http://127.0.0.1:8080 --tenants t1:gold:5,t2:silver:0.5
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
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from receiver.tenants import is_valid_tenant_id

FULL_SHARE = {"closed": 1.0, "disabled": 1.0, "ungated": 1.0, "open": 0.0, "forced_open": 0.0}


@dataclass
class Tenant:
    tenant_id: str
    tier: str
    qps: float
    error_ratio: float = 0.0
    queries: int = 0
    errors: int = 0
    rejected: int = 0
    admission: str = "ungated"
    """The breaker state the gateway last got: a receiver state, `ungated` (no
    receiver configured) or `unreachable`."""
    _query_carry: float = 0.0
    _served_carry: float = 0.0
    _error_carry: float = 0.0

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def parse_tenants(spec: str) -> list[Tenant]:
    """`t1:gold:5,t2:silver:0.5` (id:tier:qps) as tenants."""
    tenants = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        fields = part.split(":")
        if len(fields) != 3 or not is_valid_tenant_id(fields[0]) or not fields[1]:
            raise ValueError(f"expected id:tier:qps, got {part!r}")
        qps = float(fields[2])
        if qps < 0:
            raise ValueError(f"qps must not be negative in {part!r}")
        tenants.append(Tenant(fields[0], fields[1], qps))
    return tenants


def _carried(amount: float, carry: float) -> tuple[int, float]:
    """Whole units of `amount` plus what was left over last time, and the new leftover."""
    total = amount + carry
    whole = math.floor(total + 1e-9)
    return whole, total - whole


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
    ) -> None:
        self.tenants = {t.tenant_id: t for t in tenants}
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
        """Change (or create) a tenant: any of `tier`, `qps`, `error_ratio`."""
        tenant_id = change.get("tenant_id")
        if not isinstance(tenant_id, str) or not is_valid_tenant_id(tenant_id):
            raise ValueError("tenant_id: 1-64 letters, digits, '.', '_' or '-'")
        ratio, qps, tier = change.get("error_ratio"), change.get("qps"), change.get("tier")
        if ratio is not None and not (isinstance(ratio, int | float) and 0 <= ratio <= 1):
            raise ValueError("error_ratio: a number from 0 to 1")
        if qps is not None and not (isinstance(qps, int | float) and qps >= 0):
            raise ValueError("qps: a number of at least 0")
        if tier is not None and not (isinstance(tier, str) and tier):
            raise ValueError("tier: a non-empty string")
        with self.lock:
            tenant = self.tenants.setdefault(tenant_id, Tenant(tenant_id, "bronze", 0.0))
            tenant.error_ratio = tenant.error_ratio if ratio is None else float(ratio)
            tenant.qps = tenant.qps if qps is None else float(qps)
            tenant.tier = tier or tenant.tier
            return tenant.public()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"tenants": {i: t.public() for i, t in self.tenants.items()}}

    def metrics(self) -> str:
        with self.lock:
            tenants = list(self.tenants.values())
        lines = []
        for name, kind, help_text, value in (
            ("rag_queries_total", "counter", "Queries served.", lambda t: t.queries),
            ("rag_query_errors_total", "counter", "Queries that failed.", lambda t: t.errors),
            ("rag_tenant_info", "gauge", "The tenant's tier.", lambda t: 1),
        ):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            for t in tenants:
                labels = f'tenant_id="{_escape(t.tenant_id)}"'
                if name == "rag_tenant_info":
                    labels += f',tier="{_escape(t.tier)}"'
                lines.append(f"{name}{{{labels}}} {value(t)}")
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
        """Generate and admit `elapsed_s` seconds of every tenant's queries."""
        with self.lock:
            tenant_ids = list(self.tenants)
        state = ""
        for tenant_id in tenant_ids:
            # One timeout per tick, not one per tenant, while the receiver is down.
            state = "unreachable" if state == "unreachable" else self.admission(tenant_id)
            if state in FULL_SHARE:
                share = FULL_SHARE[state]
            elif state == "unreachable":
                share = 1.0 if self.fail_open else 0.0
            else:  # half_open: the probe share, as the admission API grants it per request
                share = self.probe_share
            with self.lock:
                t = self.tenants[tenant_id]
                t.admission = state
                offered, t._query_carry = _carried(t.qps * elapsed_s, t._query_carry)
                served, t._served_carry = _carried(offered * share, t._served_carry)
                if self.rng is not None:
                    failed = sum(self.rng.random() < t.error_ratio for _ in range(served))
                else:
                    failed, t._error_carry = _carried(served * t.error_ratio, t._error_carry)
                t.queries += served
                t.errors += failed
                t.rejected += offered - served

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
    parser.add_argument("--tenants", default="t1:gold:5", help="id:tier:qps,...")
    parser.add_argument("--tick-s", type=float, default=1.0)
    parser.add_argument("--fail-closed", action="store_true", help="no traffic if unreachable")
    parser.add_argument("--seed", type=int, help="draw each query's failure at random")
    args = parser.parse_args(argv)
    try:
        tenants = parse_tenants(args.tenants)
    except ValueError as exc:
        parser.error(f"--tenants: {exc}")
    platform = Platform(
        tenants,
        receiver_url=args.receiver_url,
        api_token=os.environ.get("RECEIVER_API_TOKEN"),
        tick_s=args.tick_s,
        probe_percent=float(os.environ.get("BREAKER_HALF_OPEN_PROBE_PERCENT") or 10),
        fail_open=not args.fail_closed,
        seed=args.seed,
    ).start(args.host, args.port)
    print(f"platform simulator on {platform.url}", flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    platform.stop()


if __name__ == "__main__":
    main()
