"""Alerts that do not isolate are stored and shown; the Watchdog shows the pipeline."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.conftest import READER, WEBHOOK, Clock, isolate_alert, payload


def tenant_alert(tenant_id: str, alertname: str, **labels: str) -> dict:  # type: ignore[type-arg]
    body = isolate_alert(tenant_id)
    alert = body["alerts"][0]
    alert["labels"] = {"alertname": alertname, "tenant_id": tenant_id, **labels}
    alert["fingerprint"] = f"{alertname}-{tenant_id}"
    return body


@pytest.mark.parametrize(
    ("alertname", "labels"),
    [
        ("TenantErrorBudgetBurn", {"severity": "page", "tier": "gold"}),
        ("TenantTrafficStopped", {"severity": "warning"}),
    ],
)
def test_tenant_alerts_without_isolate_never_trip(
    client: FlaskClient, alertname: str, labels: dict[str, str]
) -> None:
    """Paging and traffic-stopped alerts are kept on the tenant; the breaker stays closed."""
    reply = client.post(
        "/webhook/alertmanager", json=tenant_alert("acme", alertname, **labels), headers=WEBHOOK
    ).get_json()
    assert reply["accepted"] == 1 and reply["transitions"] == []
    tenant = client.get("/api/v1/tenants/acme", headers=READER).get_json()
    assert tenant["breaker"]["state"] == "closed"
    items = client.get("/api/v1/tenants/acme/alerts", headers=READER).get_json()["items"]
    assert [(a["fingerprint"], a["labels"]["alertname"]) for a in items] == [
        (f"{alertname}-acme", alertname)
    ]


def test_platform_alert_is_stored_and_isolates_nobody(client: FlaskClient) -> None:
    """PlatformErrorRateHigh names no tenant: stored under the platform, no breaker moves."""
    body = payload("watchdog-firing.json")
    body["alerts"][0]["labels"] = {"alertname": "PlatformErrorRateHigh", "scope": "platform"}
    body["alerts"][0]["fingerprint"] = "platform1"
    reply = client.post("/webhook/alertmanager", json=body, headers=WEBHOOK).get_json()
    assert reply["transitions"] == []
    items = client.get("/api/v1/alerts?status=firing", headers=READER).get_json()["items"]
    assert [a["fingerprint"] for a in items] == ["platform1"]
    assert client.get("/api/v1/alerts?status=resolved", headers=READER).get_json()["items"] == []
    assert client.get("/api/v1/tenants", headers=READER).get_json()["total"] == 0


def test_bad_status_filter_is_400(client: FlaskClient) -> None:
    """The status filter names the accepted values."""
    assert client.get("/api/v1/alerts?status=maybe", headers=READER).status_code == 400


def test_watchdog_heartbeat(client: FlaskClient, clock: Clock) -> None:
    """Unseen -> unhealthy; seen -> healthy; silent past the limit -> unhealthy again."""
    assert client.get("/api/v1/pipeline", headers=READER).get_json()["healthy"] is False
    watchdog = payload("watchdog-firing.json")
    client.post("/webhook/alertmanager", json=watchdog, headers=WEBHOOK)
    clock.advance(60)
    # Alertmanager's repeat of the same firing Watchdog is a duplicate but still a heartbeat.
    reply = client.post("/webhook/alertmanager", json=watchdog, headers=WEBHOOK).get_json()
    assert reply["duplicates"] == 1
    status = client.get("/api/v1/pipeline", headers=READER).get_json()
    assert status["healthy"] is True and status["watchdog_age_s"] == 0
    ready = client.get("/readyz").get_json()["detail"]
    assert ready["watchdog_last_seen_at"] == status["watchdog_last_seen_at"]
    clock.advance(301)
    assert client.get("/api/v1/pipeline", headers=READER).get_json()["healthy"] is False
