"""Reconcile: deliveries the receiver missed are rebuilt from Alertmanager's active
alerts, and alerts Alertmanager no longer has are resolved, through the webhook's path.

The blast-radius guard is off (100%) where tenants fail without a registry: with two
known tenants its cap is one, and holding trips back is not what is tested here."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from pytest_httpserver import HTTPServer

from receiver import create_app
from receiver.api.deps import EXTENSION
from receiver.config import Settings
from receiver.reconcile import ReconcileError, go_time_text, reconcile
from receiver.services import Services
from receiver.tenants import Tier
from tests.conftest import (
    ADMIN_TOKEN,
    ANY_ALERT_TIME_S,
    API_TOKEN,
    READER,
    T0,
    TOKENS_ENV,
    WEBHOOK,
    WEBHOOK_TOKEN,
    isolate_alert,
    payload,
)
from tests.servers import (
    Alertmanager,
    AlertmanagerApi,
    Receiver,
    RedisServer,
    free_port,
    wait_for,
)

URL = "/webhook/alertmanager"
ISOLATE = {"alertname": "TenantErrorRateHigh", "action": "isolate", "severity": "critical"}
WATCHDOG = {"alertname": "Watchdog", "severity": "none"}


def services_on(url: str) -> Services:
    """What the receiver's factory builds, here in the test process on the same Redis."""
    client = redis.Redis.from_url(url, decode_responses=True)
    settings = Settings(
        WEBHOOK_TOKEN,
        API_TOKEN,
        ADMIN_TOKEN,
        redis_url=url,
        max_isolated_percent=100,
        max_alert_age_s=ANY_ALERT_TIME_S,
        max_alert_future_s=ANY_ALERT_TIME_S,
    )
    app = create_app({"SETTINGS": settings, "REDIS_CLIENT": client, "SWEEPER": False})
    services: Services = app.extensions[EXTENSION]
    return services


def timeline(receiver: Receiver, tenant_id: str) -> list[str]:
    """Kinds of the timeline entries about `tenant_id` in its only incident."""
    listed = receiver.api(f"/incidents?tenant_id={tenant_id}")
    assert listed["total"] == 1
    incident = receiver.api(f"/incidents/{listed['items'][0]['id']}")
    return [e["kind"] for e in incident["timeline"] if e["tenant_id"] == tenant_id]


@pytest.fixture
def receiver(redis_server: RedisServer, real_redis: redis.Redis) -> Iterator[Receiver]:
    env = {**TOKENS_ENV, "REDIS_URL": redis_server.url, "GUARD_MAX_ISOLATED_PERCENT": "100"}
    server = Receiver(env).start()
    yield server
    server.stop()


@pytest.mark.redis
def test_missed_alert_is_applied_then_resolved(
    receiver: Receiver, redis_server: RedisServer
) -> None:
    """Alertmanager cannot reach the receiver: reconcile isolates the tenant, and once
    the alert ends, resolves it (the breaker stays open, as for a resolved delivery)."""
    alertmanager = Alertmanager(f"http://127.0.0.1:{free_port()}/webhook/alertmanager", "x" * 16)
    alertmanager.start()
    try:
        am = AlertmanagerApi(alertmanager.url)
        services = services_on(redis_server.url)
        receiver.stop()
        started = time.time() - 60
        am.post(am.alert({**ISOLATE, "tenant_id": "acme"}, started))
        wait_for(lambda: am.webhook_requests()[1] >= 1, 10, "a failed delivery")
        receiver.start()

        first = reconcile(services, alertmanager.url, time.time())
        assert (first.active, first.accepted, first.duplicates) == (1, 1, 0)
        assert first.resolve_skipped is not None and "Watchdog" in first.resolve_skipped
        breaker = receiver.api("/tenants/acme")["breaker"]
        assert breaker["state"] == "open" and len(breaker["transitions"]) == 1
        assert timeline(receiver, "acme").count("alert_firing") == 1

        again = reconcile(services, alertmanager.url, time.time())
        assert (again.accepted, again.duplicates, again.transitions) == (0, 1, [])

        am.post(am.alert(WATCHDOG, started))
        am.post(am.alert({**ISOLATE, "tenant_id": "acme"}, started, ends_at=time.time() - 1))
        young = reconcile(services, alertmanager.url, time.time())
        assert young.resolve_skipped is not None and "less than" in young.resolve_skipped
        assert young.resolved == []

        done = reconcile(services, alertmanager.url, time.time(), min_uptime_s=0, settle_s=0)
        assert done.resolve_skipped is None and len(done.resolved) == 1
        breaker = receiver.api("/tenants/acme")["breaker"]
        assert (breaker["state"], breaker["firing_alerts"]) == ("open", [])
        assert len(breaker["transitions"]) == 1
        stored = receiver.api("/tenants/acme/alerts")["items"]
        assert [a["status"] for a in stored] == ["resolved"]
        assert timeline(receiver, "acme").count("alert_resolved") == 1
        assert receiver.api("/pipeline")["watchdog_last_seen_at"] is None

        after = reconcile(services, alertmanager.url, time.time(), min_uptime_s=0, settle_s=0)
        assert (after.resolved, after.accepted) == ([], 0)
    finally:
        alertmanager.stop()


@pytest.mark.redis
def test_reconcile_and_alertmanagers_retry_apply_once(
    receiver: Receiver, redis_server: RedisServer
) -> None:
    """The receiver restarts while Alertmanager retries: whichever of reconcile and the
    retried delivery comes first, the other is a duplicate (start times in the API and
    the webhook are written differently, `.120Z` against `.12Z`)."""
    alertmanager = Alertmanager(f"{receiver.url}/webhook/alertmanager", WEBHOOK_TOKEN)
    alertmanager.start()
    try:
        am = AlertmanagerApi(alertmanager.url)
        services = services_on(redis_server.url)
        receiver.stop()
        starts = [float(int(time.time()) - 60) + 0.12, float(int(time.time()) - 60)]
        tenants = ["acme", "globex"]
        for tenant_id, started in zip(tenants, starts, strict=True):
            am.post(am.alert({**ISOLATE, "tenant_id": tenant_id}, started))
        wait_for(lambda: am.webhook_requests()[1] >= 1, 10, "a failed delivery")
        receiver.start()

        first = reconcile(services, alertmanager.url, time.time())

        def delivered() -> bool:
            total, failed = am.webhook_requests()
            return total - failed >= len(tenants)

        wait_for(delivered, 30, "Alertmanager's retried deliveries")
        second = reconcile(services, alertmanager.url, time.time())
        assert first.accepted <= len(tenants)
        assert (second.accepted, second.duplicates) == (0, len(tenants))
        for tenant_id in tenants:
            breaker = receiver.api(f"/tenants/{tenant_id}")["breaker"]
            moves = [(t["from"], t["to"], t["suppressed"]) for t in breaker["transitions"]]
            assert moves == [("closed", "open", False)]
            assert timeline(receiver, tenant_id).count("alert_firing") == 1
    finally:
        alertmanager.stop()


def am_item(tenant_id: str | None, starts_at: str, **extra: Any) -> dict[str, Any]:
    labels = {**ISOLATE, "tenant_id": tenant_id} if tenant_id else dict(WATCHDOG)
    return {
        "labels": labels,
        "annotations": {},
        "startsAt": starts_at,
        "endsAt": "2027-01-15T09:00:00.000Z",
        "fingerprint": f"fp-{tenant_id}" if tenant_id else "fp-watchdog",
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        **extra,
    }


def serve(httpserver: HTTPServer, alerts: list[Any], uptime: str = "2027-01-14T00:00:00Z") -> str:
    httpserver.expect_request("/api/v2/alerts").respond_with_json(alerts)
    httpserver.expect_request("/api/v2/status").respond_with_json({"uptime": uptime})
    return httpserver.url_for("/")


def services_of(client: FlaskClient) -> Services:
    services: Services = client.application.extensions[EXTENSION]
    return services


def test_webhook_then_reconcile_is_a_duplicate(client: FlaskClient, httpserver: HTTPServer) -> None:
    """The webhook wrote nanoseconds, the API milliseconds: still the same alert state."""
    body = isolate_alert("acme", starts_at="2027-01-15T08:00:00.123456789Z")
    client.post("/webhook/alertmanager", json=body, headers=WEBHOOK)
    url = serve(httpserver, [am_item("acme", "2027-01-15T08:00:00.123Z")])
    result = reconcile(services_of(client), url, T0)
    assert (result.accepted, result.duplicates, result.transitions) == (0, 1, [])


@pytest.mark.parametrize("reconcile_first", [False, True])
def test_captured_webhook_and_api_alerts_are_one_state(
    client: FlaskClient, httpserver: HTTPServer, reconcile_first: bool
) -> None:
    """Captured from Alertmanager 0.25: the webhook writes `.12Z`, the API `.120Z`;
    whichever arrives second is a duplicate."""
    url = serve(httpserver, payload("alertmanager-0.25-api-alerts.json"))
    services = services_of(client)

    def deliver() -> dict[str, Any]:
        body = payload("alertmanager-0.25-isolate-firing.json")
        reply: dict[str, Any] = client.post(URL, json=body, headers=WEBHOOK).get_json()
        return reply

    if reconcile_first:
        assert reconcile(services, url, T0).accepted == 1
        reply = deliver()
        assert (reply["accepted"], reply["duplicates"]) == (0, 1)
    else:
        assert deliver()["accepted"] == 1
        assert reconcile(services, url, T0).duplicates == 1
    breaker = client.get("/api/v1/tenants/acme", headers=READER).get_json()["breaker"]
    assert len(breaker["transitions"]) == 1


def test_nothing_changes_when_alertmanager_is_unreachable(client: FlaskClient) -> None:
    """No answer is not an empty answer: nothing is resolved, the caller hears why."""
    client.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
    with pytest.raises(ReconcileError):
        reconcile(services_of(client), f"http://127.0.0.1:{free_port()}", T0 + 600)
    breaker = client.get("/api/v1/tenants/acme", headers=READER).get_json()["breaker"]
    assert breaker["firing_alerts"] == ["fp-acme"]


def test_bad_items_are_counted_not_fatal(client: FlaskClient, httpserver: HTTPServer) -> None:
    """Malformed alerts and hostile tenant ids are rejected; the rest applies."""
    items = [
        am_item("acme", "2027-01-15T08:00:00.000Z"),
        am_item("x}:*", "2027-01-15T08:00:00.000Z"),
        {**am_item("globex", "2027-01-15T08:00:00.000Z"), "labels": {"tenant_id": 7}},
        am_item("initech", "yesterday"),
        "not an alert",
        am_item("silenced", "2027-01-15T08:00:00.000Z", status={"state": "suppressed"}),
    ]
    result = reconcile(services_of(client), serve(httpserver, items), T0)
    assert (result.accepted, result.rejected) == (1, 4)
    assert [e.tenant_id for e in result.transitions] == ["acme"]
    keys = services_of(client).store.client.keys("*")
    assert not [key for key in keys if "x}" in key or "silenced" in key]


def test_not_a_list_is_an_error(client: FlaskClient, httpserver: HTTPServer) -> None:
    """An answer we cannot read changes nothing."""
    httpserver.expect_request("/api/v2/alerts").respond_with_json({"alerts": []})
    httpserver.expect_request("/api/v2/status").respond_with_json({})
    with pytest.raises(ReconcileError):
        reconcile(services_of(client), httpserver.url_for("/"), T0)


def test_fresh_deliveries_are_not_resolved(client: FlaskClient, httpserver: HTTPServer) -> None:
    """An alert received after `now - settle_s` may be newer than the list: kept firing."""
    client.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
    url = serve(httpserver, [am_item(None, "2027-01-14T00:00:00.000Z")])
    services = services_of(client)
    kept = reconcile(services, url, T0 + 1, settle_s=5)
    assert kept.resolve_skipped is None and kept.resolved == []
    gone = reconcile(services, url, T0 + 10, settle_s=5)
    assert gone.resolved == ["fp-acme"]
    assert services.store.alerts("acme")["fp-acme"]["status"] == "resolved"


def test_registry_tenants_are_indexed_again(client: FlaskClient, httpserver: HTTPServer) -> None:
    """After Redis lost its data, the guard's count of known tenants comes back."""
    services = services_of(client)
    with_registry = dataclasses.replace(
        services, registry={f"t{i}": Tier.SILVER for i in range(10)}
    )
    services.store.client.flushall()
    reconcile(with_registry, serve(httpserver, []), T0)
    assert services.store.known_tenants(0, 100)[1] == 10


@pytest.mark.parametrize(
    ("api_text", "webhook_text"),
    [
        ("2027-01-15T08:00:00.120Z", "2027-01-15T08:00:00.12Z"),
        ("2027-01-15T08:00:00.000Z", "2027-01-15T08:00:00Z"),
        ("2027-01-15T08:00:00.033Z", "2027-01-15T08:00:00.033Z"),
        ("2027-01-15T08:00:00Z", "2027-01-15T08:00:00Z"),
        ("2027-01-15T10:00:00.500+02:00", "2027-01-15T10:00:00.5+02:00"),
    ],
)
def test_start_times_are_written_as_the_webhook_does(api_text: str, webhook_text: str) -> None:
    """Go's RFC3339Nano drops trailing zeros; the API always writes three digits."""
    assert go_time_text(api_text) == webhook_text


def test_transitions_made_by_reconcile_are_counted_in_metrics(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    """A missed alert applied by reconcile opens the breaker and /metrics counts it,
    once; the webhook's alert counters are left to webhook deliveries."""
    transitions = (
        "blast_radius_breaker_transitions_total",
        {"from_state": "closed", "to_state": "open"},
    )
    accepted = ("blast_radius_alerts_total", {"outcome": "accepted"})
    before = [REGISTRY.get_sample_value(*m) or 0.0 for m in (transitions, accepted)]
    url = serve(httpserver, [am_item("acme", "2027-01-15T08:00:00.123Z")])
    result = reconcile(services_of(client), url, T0)
    assert [e.transition.to_state.value for e in result.transitions] == ["open"]
    after = [REGISTRY.get_sample_value(*m) or 0.0 for m in (transitions, accepted)]
    assert after[0] - before[0] == 1
    assert after[1] == before[1]
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'blast_radius_breaker_transitions_total{from_state="closed",to_state="open"}' in scraped
