"""GET /metrics: the receiver's counters, and breaker, incident and Watchdog gauges
read from Redis at scrape time; once per scrape under gunicorn's workers."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from receiver import create_app, metrics
from receiver.api import metrics as metrics_api
from receiver.breaker import State, Transition, TransitionEvent
from receiver.config import Settings
from tests.conftest import (
    ADMIN,
    READER,
    T0,
    TOKENS_ENV,
    WEBHOOK,
    Clock,
    auth,
    isolate_alert,
    payload,
)
from tests.servers import Receiver, RedisServer, free_port

URL = "/webhook/alertmanager"
EXPORTED = (
    "blast_radius_webhook_requests_total",
    "blast_radius_webhook_duration_seconds_count",
    "blast_radius_alerts_total",
    "blast_radius_detection_to_isolation_seconds_bucket",
    "blast_radius_redis_up",
    "blast_radius_breaker_state",
    "blast_radius_known_tenants",
    "blast_radius_isolated_tenants",
    "blast_radius_incidents_open",
)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample by name and labels; a series exported twice fails the test."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, f"series exported twice: {key}"
            found[key] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(response.get_data(as_text=True))


def test_metrics_endpoint_exposes_every_name_without_auth(client: FlaskClient) -> None:
    """/metrics needs no token and names every metric once a tenant has been seen."""
    client.post(URL, json=isolate_alert("acme"), headers=WEBHOOK)
    names = {name for name, _ in scrape(client)}
    assert set(EXPORTED) <= names


def test_breaker_state_gauge_follows_the_webhook_and_the_clock(
    client: FlaskClient, clock: Clock
) -> None:
    """A tenant opened through the webhook reads open, then half open once its
    timeout passes, with no sweep having recorded it."""
    client.post(URL, json=isolate_alert("acme", tier="gold"), headers=WEBHOOK)
    found = scrape(client)
    assert value(found, "blast_radius_breaker_state", tenant_id="acme", state="open") == 1
    assert value(found, "blast_radius_breaker_state", tenant_id="acme", state="closed") is None
    assert value(found, "blast_radius_known_tenants") == 1
    assert value(found, "blast_radius_isolated_tenants") == 1
    assert value(found, "blast_radius_incidents_open", priority="P1") == 1
    assert value(found, "blast_radius_incidents_open", priority="P0") == 0
    clock.advance(60)
    found = scrape(client)
    assert value(found, "blast_radius_breaker_state", tenant_id="acme", state="half_open") == 1
    assert value(found, "blast_radius_breaker_state", tenant_id="acme", state="open") is None


def webhook_counters() -> dict[str, float]:
    return {
        "2xx": counted("blast_radius_webhook_requests_total", status_class="2xx"),
        "4xx": counted("blast_radius_webhook_requests_total", status_class="4xx"),
        "accepted": counted("blast_radius_alerts_total", outcome="accepted"),
        "duplicate": counted("blast_radius_alerts_total", outcome="duplicate"),
        "rejected": counted("blast_radius_alerts_total", outcome="rejected"),
        "opened": counted(
            "blast_radius_breaker_transitions_total", from_state="closed", to_state="open"
        ),
        "timed": counted("blast_radius_webhook_duration_seconds_count"),
    }


def test_webhook_counters_move(client: FlaskClient) -> None:
    """Requests count by status class, alerts by outcome, transitions by states."""
    before = webhook_counters()
    body = isolate_alert("acme")
    client.post(URL, json=body, headers=WEBHOOK)
    client.post(URL, json=body, headers=WEBHOOK)
    client.post(URL, json=isolate_alert("bad tenant!"), headers=WEBHOOK)
    client.post(URL, json=body, headers=auth("not-the-webhook-token"))
    client.post(URL, json={"alerts": "nope"}, headers=WEBHOOK)
    after = webhook_counters()
    moved = {key: after[key] - before[key] for key in before}
    assert moved == {
        "2xx": 3,
        "4xx": 2,
        "accepted": 1,
        "duplicate": 1,
        "rejected": 1,
        "opened": 1,
        "timed": 5,
    }


def test_detection_to_isolation_is_observed_from_the_alert_start(client: FlaskClient) -> None:
    """An alert that started 42s before it reached us opens the breaker 42s late."""
    started = datetime.fromtimestamp(T0 - 42, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    count = counted("blast_radius_detection_to_isolation_seconds_count")
    total = counted("blast_radius_detection_to_isolation_seconds_sum")
    client.post(URL, json=isolate_alert("acme", starts_at=started), headers=WEBHOOK)
    resolved = isolate_alert("acme", status="resolved", starts_at=started)
    client.post(URL, json=resolved, headers=WEBHOOK)
    assert counted("blast_radius_detection_to_isolation_seconds_count") - count == 1
    assert counted("blast_radius_detection_to_isolation_seconds_sum") - total == 42


def test_observe_many_counts_as_observing_one_by_one() -> None:
    """Bulk observation lands every amount in the bucket `observe` would, edges and
    overflow included, and adds the same sum and count."""
    registry = CollectorRegistry()
    buckets = (1, 2.5, 5, 10)
    one_by_one = Histogram("one_by_one", "each", buckets=buckets, registry=registry)
    in_bulk = Histogram("in_bulk", "bulk", buckets=buckets, registry=registry)
    amounts = [0.0, 0.5, 1.0, 1.0000001, 2.5, 4.9, 5.0, 10.0, 10.5, 999.0, 3.0, 3.0]
    for amount in amounts:
        one_by_one.observe(amount)
    metrics.observe_many(in_bulk, amounts)
    metrics.observe_many(in_bulk, [])

    def samples(name: str) -> dict[tuple[str, str], float]:
        return {
            (s.name.removeprefix(name), s.labels.get("le", "")): s.value
            for family in registry.collect()
            if family.name == name
            for s in family.samples
            if not s.name.endswith("_created")
        }

    assert samples("in_bulk") == samples("one_by_one")
    assert samples("in_bulk")[("_count", "")] == len(amounts)
    assert samples("in_bulk")[("_bucket", "2.5")] == 5


def test_observe_many_without_bucket_values_observes_each() -> None:
    """A histogram that does not keep its buckets as prometheus_client does now is
    given every amount through its own `observe`."""

    class Plain:
        def __init__(self) -> None:
            self.observed: list[float] = []

        def observe(self, amount: float) -> None:
            self.observed.append(amount)

    plain = Plain()
    metrics.observe_many(plain, [0.5, 3.0, 0.5])  # type: ignore[arg-type]
    assert plain.observed == [0.5, 3.0, 0.5]


def test_operator_and_suppressed_transitions_count_apart() -> None:
    """A held-back trip is not a transition; it has its own counter."""
    made = TransitionEvent("acme", Transition(State.CLOSED, State.FORCED_OPEN, T0, "operator"))
    held = TransitionEvent("acme", Transition(State.CLOSED, State.OPEN, T0, "guard", True))
    forced = counted(
        "blast_radius_breaker_transitions_total", from_state="closed", to_state="forced_open"
    )
    suppressed = counted(
        "blast_radius_breaker_suppressed_transitions_total", from_state="closed", to_state="open"
    )
    metrics.observe_transitions([made, held])
    assert (
        counted(
            "blast_radius_breaker_transitions_total", from_state="closed", to_state="forced_open"
        )
        == forced + 1
    )
    assert (
        counted(
            "blast_radius_breaker_suppressed_transitions_total",
            from_state="closed",
            to_state="open",
        )
        == suppressed + 1
    )


def test_watchdog_age_is_absent_until_it_arrives(client: FlaskClient, clock: Clock) -> None:
    """No Watchdog yet: no sample. Then its age grows with the clock."""
    assert value(scrape(client), "blast_radius_watchdog_age_seconds") is None
    client.post(URL, json=payload("watchdog-firing.json"), headers=WEBHOOK)
    clock.advance(42)
    assert value(scrape(client), "blast_radius_watchdog_age_seconds") == 42


def test_delivery_counter() -> None:
    """The notification worker counts each attempt by channel and outcome."""
    before = counted("blast_radius_notification_deliveries_total", channel="slack", outcome="sent")
    metrics.observe_delivery("slack", "sent")
    after = counted("blast_radius_notification_deliveries_total", channel="slack", outcome="sent")
    assert after == before + 1


def test_redis_down_still_serves_the_counters(settings: Settings, clock: Clock) -> None:
    """Redis unreachable at scrape: redis_up 0 and the counters, not a 500."""
    dead = redis.Redis(port=free_port(), decode_responses=True, socket_connect_timeout=0.2)
    app = create_app({"SETTINGS": settings, "REDIS_CLIENT": dead, "CLOCK": clock, "SWEEPER": False})
    found = scrape(app.test_client())
    assert value(found, "blast_radius_redis_up") == 0
    assert value(found, "blast_radius_webhook_requests_total", status_class="2xx") is not None
    assert not any(name == "blast_radius_breaker_state" for name, _ in found)


def test_init_app_twice_is_harmless(app: Flask) -> None:
    """Wiring it in create_app and again in a test app does not double anything."""
    metrics_api.init_app(app)
    metrics_api.init_app(app)
    assert app.test_client().get("/metrics").status_code == 200


def stale_counter_file(directory: Path) -> None:
    """A counter file as a worker of an earlier run would have left it."""
    code = (
        "from prometheus_client import Counter\n"
        "Counter('blast_radius_webhook_requests', '', ['status_class']).labels('2xx').inc(1000)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert glob.glob(str(directory / "counter_*.db"))


@pytest.fixture
def served(
    redis_server: RedisServer, real_redis: redis.Redis, tmp_path: Path
) -> Iterator[tuple[Receiver, Path]]:
    directory = tmp_path / "metrics"
    directory.mkdir()
    stale_counter_file(directory)
    env = {
        **TOKENS_ENV,
        "REDIS_URL": redis_server.url,
        "GUARD_MAX_ISOLATED_PERCENT": "100",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    server = Receiver(env, workers=3).start()
    yield server, directory
    server.stop()


@pytest.mark.redis
def test_gunicorn_workers_sum_counters_and_export_redis_gauges_once(
    served: tuple[Receiver, Path],
) -> None:
    """Three workers: counters add up over all of them (an earlier run's files are
    gone), and the gauges read from Redis are the real counts, not three times them."""
    server, directory = served
    url = f"{server.url}{URL}"
    tenants = [f"t{i:02d}" for i in range(24)]

    def deliver(tenant_id: str) -> None:
        response = requests.post(url, json=isolate_alert(tenant_id), headers=WEBHOOK, timeout=10)
        assert response.status_code == 200, response.text

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(deliver, tenants))
    requests.post(
        f"{server.url}/api/v1/tenants/t00/breaker",
        json={"action": "force_open"},
        headers=ADMIN,
        timeout=10,
    ).raise_for_status()
    writers = {
        Path(name).stem.rsplit("_", 1)[1] for name in glob.glob(str(directory / "counter_*.db"))
    }
    assert len(writers) >= 2, f"one worker took every request: {writers}"

    for _ in range(6):  # answered by whichever worker accepts the connection
        found = samples(requests.get(f"{server.url}/metrics", timeout=10).text)
        assert value(found, "blast_radius_webhook_requests_total", status_class="2xx") == 24
        assert value(found, "blast_radius_alerts_total", outcome="accepted") == 24
        assert value(found, "blast_radius_detection_to_isolation_seconds_count") == 24
        assert value(found, "blast_radius_known_tenants") == 24
        assert value(found, "blast_radius_isolated_tenants") == 24
        assert value(found, "blast_radius_incidents_open", priority="P0") == 1
        assert value(found, "blast_radius_breaker_state", tenant_id="t00", state="forced_open") == 1
        assert value(found, "blast_radius_breaker_state", tenant_id="t01", state="open") == 1
        states = [v for (name, _), v in found.items() if name == "blast_radius_breaker_state"]
        assert sum(states) == 24 and len(states) == 24  # one series per tenant

    server.stop()
    lines = [line for line in server.output().splitlines() if line.startswith("{")]
    access = [e for e in map(json.loads, lines) if e.get("logger") == "gunicorn.access"]
    webhooks = [entry for entry in access if entry["path"] == URL]
    assert len(webhooks) == 24 and all(len(entry["request_id"]) == 32 for entry in webhooks)
    assert TOKENS_ENV["RECEIVER_WEBHOOK_TOKEN"] not in server.output()


def test_prepare_multiprocess_dir_keeps_only_this_process_files(tmp_path: Path) -> None:
    """Files of gone processes are dropped; this process's own are kept."""
    stale, own = tmp_path / "counter_1.db", tmp_path / f"counter_{os.getpid()}.db"
    stale.write_bytes(b"x")
    own.write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("kept")
    metrics.prepare_multiprocess_dir(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([own.name, "notes.txt"])


def test_metrics_token_when_set_is_asked_for(settings: Settings, redis_client: redis.Redis) -> None:
    """With METRICS_TOKEN, /metrics is 401 in the envelope without it and 200 with it;
    the other tokens do not open it."""
    guarded = dataclasses.replace(settings, metrics_token="metrics-token-for-tests-01")
    client = create_app(
        {"SETTINGS": guarded, "REDIS_CLIENT": redis_client, "SWEEPER": False}
    ).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=READER).status_code == 401
    reply = client.get("/metrics", headers={"Authorization": "Bearer metrics-token-for-tests-01"})
    assert reply.status_code == 200 and b"blast_radius_webhook_requests_total" in reply.data
