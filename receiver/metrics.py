"""Prometheus metrics: what this receiver did (counters, histograms) and what Redis
says now (breaker states, open incidents, Watchdog age), read at scrape time.
Plain counters, importable anywhere; `api.metrics` serves them on `GET /metrics`.

Under gunicorn every worker counts in files under `PROMETHEUS_MULTIPROC_DIR`
(`gunicorn.conf.py` sets it up) and `GET /metrics` sums them, whichever worker
answers. The Redis-derived gauges are not counted anywhere: a collector reads
Redis once per scrape in the answering worker, so they are never summed across
workers. Several receivers on one Redis all export them; aggregate those with
`max`, not `sum`.

`GET /metrics` has no auth, like most exporters: it reveals tenant ids, breaker
states and counts, nothing that changes anything. Keep it off the public listener.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections import Counter as Tally
from collections.abc import Iterable, Iterator

import redis
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from receiver.alerts import Kind
from receiver.breaker import ISOLATING, State, TransitionEvent
from receiver.fleet import tiles
from receiver.incidents import Priority
from receiver.ingest import IngestResult
from receiver.services import Services

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ALERT_OUTCOMES = ("accepted", "duplicate", "rejected")
STATUS_CLASSES = ("2xx", "4xx", "5xx")

WEBHOOK_REQUESTS = Counter(
    "blast_radius_webhook_requests_total",
    "Alertmanager webhook requests, by HTTP status class.",
    ["status_class"],
)
WEBHOOK_DURATION = Histogram(
    "blast_radius_webhook_duration_seconds",
    "Time to process one Alertmanager webhook request.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ALERTS = Counter(
    "blast_radius_alerts_total",
    "Alerts in webhook deliveries: accepted (new state), duplicate, rejected.",
    ["outcome"],
)
TRANSITIONS = Counter(
    "blast_radius_breaker_transitions_total",
    "Breaker transitions recorded, each counted once by the process that committed it.",
    ["from_state", "to_state"],
)
SUPPRESSED = Counter(
    "blast_radius_breaker_suppressed_transitions_total",
    "Transitions policy held back: the blast-radius guard, or a disabled breaker.",
    ["from_state", "to_state"],
)
DETECTION_TO_ISOLATION = Histogram(
    "blast_radius_detection_to_isolation_seconds",
    "From the isolation alert's startsAt to the tenant's breaker opening.",
    buckets=(1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600),
)
BOARD_CONFLICTS = Counter(
    "blast_radius_board_conflicts_total",
    "Incident board changes retried because another process changed the board first.",
)
BOARD_HANDOFFS = Counter(
    "blast_radius_board_handoffs_total",
    "Deliveries whose incident-board signals were left for the process holding the "
    "board's turn, which applied them with its own change.",
)
DELIVERIES = Counter(
    "blast_radius_notification_deliveries_total",
    "Notification delivery attempts, by channel and outcome.",
    ["channel", "outcome"],
)
WOULD_DENY = Counter(
    "blast_radius_would_deny_total",
    "Admission answers that allowed a request only because ENFORCEMENT=shadow, per tenant "
    "(/gate and the per-tenant admission API; gateways deciding from the feed count their own).",
    ["tenant_id"],
)
GATE_DECISIONS = Counter(
    "blast_radius_gate_decisions_total",
    "Forward-auth (/gate) answers: allow, deny, would_deny (shadow), no_tenant, "
    "fail_open, fail_closed.",
    ["outcome"],
)
for _outcome in ALERT_OUTCOMES:
    ALERTS.labels(_outcome)
for _status in STATUS_CLASSES:
    WEBHOOK_REQUESTS.labels(_status)


def observe_ingest(result: IngestResult) -> None:
    """Count one webhook delivery's alerts, then as `observe_detections`."""
    ALERTS.labels("accepted").inc(result.accepted)
    ALERTS.labels("duplicate").inc(result.duplicates)
    ALERTS.labels("rejected").inc(len(result.rejected))
    observe_detections(result)


def observe_detections(result: IngestResult) -> None:
    """Count applied alerts' transitions, and time each first isolation from its
    alert's start (reconciled alerts too: their transitions are as real)."""
    observe_transitions(result.transitions)
    starts: dict[str, float] = {}
    for scope, alert in result.alerts:
        if alert.kind is Kind.ISOLATE and alert.firing:
            starts[scope] = min(alert.starts_at_s, starts.get(scope, alert.starts_at_s))
    delays = []
    for event in result.transitions:
        t = event.transition
        opened = t.from_state is State.CLOSED and t.to_state is State.OPEN
        if opened and not t.suppressed and event.tenant_id in starts:
            delays.append(max(0.0, t.at - starts[event.tenant_id]))
    observe_many(DETECTION_TO_ISOLATION, delays)


def observe_many(histogram: Histogram, amounts: Iterable[float]) -> None:
    """As `histogram.observe` for each amount, but each bucket and the sum are
    incremented once: a storm's thousands of isolations are a few increments, where
    one by one each is a locked write to the worker's metrics file. It adds to the
    histogram's own bucket values; a prometheus_client without them is given each
    amount in turn."""
    bounds = getattr(histogram, "_upper_bounds", None)
    if bounds is None or not hasattr(histogram, "_buckets") or not hasattr(histogram, "_sum"):
        for amount in amounts:
            histogram.observe(amount)
        return
    per_bucket: Tally[int] = Tally()
    total = 0.0
    for amount in amounts:
        per_bucket[bisect.bisect_left(bounds, amount)] += 1
        total += amount
    if not per_bucket:
        return
    histogram._sum.inc(total)
    for index, count in per_bucket.items():
        histogram._buckets[index].inc(count)


def observe_transitions(events: Iterable[TransitionEvent]) -> None:
    """Call only with transitions this process committed, so each counts once.
    Added up first: a storm's thousands of transitions are a few increments."""
    moves = Tally(
        (e.transition.suppressed, e.transition.from_state, e.transition.to_state) for e in events
    )
    for (suppressed, from_state, to_state), count in moves.items():
        counter = SUPPRESSED if suppressed else TRANSITIONS
        counter.labels(from_state.value, to_state.value).inc(count)


def observe_delivery(channel: str, outcome: str) -> None:
    DELIVERIES.labels(channel, outcome).inc()


class StateCollector:
    """Gauges read from Redis at scrape time. If Redis does not answer, only
    `blast_radius_redis_up 0`: the scrape still carries this process's counters."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "blast_radius_redis_up", "Whether Redis answered the scrape-time reads (1) or not."
        )
        try:
            families = self._read()
        except redis.RedisError as exc:
            log.warning("metrics: Redis unavailable at scrape: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        s = self.services
        now = s.clock()
        state = GaugeMetricFamily(
            "blast_radius_breaker_state",
            "1 for the tenant's current breaker state (time-based transitions applied); "
            "one series per tenant, labelled with that state: closed, open, half_open, "
            "forced_open or disabled.",
            labels=["tenant_id", "state"],
        )
        states: Tally[State] = Tally()
        for tile in tiles(s.store, s.settings, s.registry, now):
            states[tile.state] += 1
            state.add_metric([tile.tenant_id, tile.state.value], 1)
        known = sum(states.values())
        isolated = sum(n for st, n in states.items() if st in ISOLATING)

        board = s.incidents.board(now)
        by_priority = Tally(i.priority for i in board.incidents.values() if i.is_open)
        incidents = GaugeMetricFamily(
            "blast_radius_incidents_open",
            "Incidents not yet resolved (open or acknowledged), by priority.",
            labels=["priority"],
        )
        for priority in Priority:
            incidents.add_metric([priority.value], by_priority[priority])

        watchdog = GaugeMetricFamily(
            "blast_radius_watchdog_age_seconds",
            "Seconds since the Watchdog alert last arrived; absent if it never has.",
        )
        last = s.store.watchdog_last_seen()
        if last is not None:
            watchdog.add_metric([], max(0.0, now - last))
        return [
            state,
            GaugeMetricFamily("blast_radius_known_tenants", "Tenants the receiver knows.", known),
            GaugeMetricFamily(
                "blast_radius_isolated_tenants",
                "Tenants whose breaker is open, half open or forced open.",
                isolated,
            ),
            incidents,
            watchdog,
        ]


class _Forward:
    """Another registry's metrics, so the process-wide one and a per-app one
    are served together."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


def process_registry() -> CollectorRegistry:
    """This process's counters: summed over every process's files in multiprocess
    mode, else the default registry (which adds process_* and python_*)."""
    registry = CollectorRegistry()
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(REGISTRY))
    return registry


def build_registry(services: Services) -> CollectorRegistry:
    registry = process_registry()
    state: Collector = StateCollector(services)
    registry.register(state)
    return registry


def start_worker_exporter(port: int, addr: str = "0.0.0.0") -> None:
    """Serve a non-web process's counters (the notification worker) on their own
    port. In multiprocess mode this sums the files of the worker's forked job
    processes too; it never reads Redis, so the state gauges stay single."""
    start_http_server(port, addr=addr, registry=process_registry())


def prepare_multiprocess_dir(path: str) -> None:
    """Create the directory and drop files left by an earlier run: their pids are
    gone, and leftover counters would be added to the new ones. This process's own
    files stay: importing this module already created them."""
    os.makedirs(path, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for name in os.listdir(path):
        if name.endswith(".db") and not name.endswith(own):
            os.remove(os.path.join(path, name))
