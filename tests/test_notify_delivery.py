"""Notifications end to end with real local servers: PagerDuty and Slack on a local
HTTP server, SMTP on aiosmtpd, the queue on a real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer
from werkzeug import Response

from receiver.notify import jobs
from receiver.store.keys import UPDATES_DUE
from receiver.sweeper import sweep_all
from tests.conftest import READER, WEBHOOK, Clock, isolate_alert
from tests.notify_fixtures import (
    PD_PATH,
    ROUTING_KEY,
    SLACK_PATH,
    Mailbox,
    notify_settings,
    requests_to,
    services,
    work,
)

pytestmark = pytest.mark.redis


def deliveries(app: Flask, query: str = "") -> list[dict[str, Any]]:
    body = app.test_client().get(f"/api/v1/notifications{query}", headers=READER).get_json()
    items: list[dict[str, Any]] = body["items"]
    return items


def settled(app: Flask) -> Callable[[], bool]:
    return lambda: all(d["status"] != "pending" for d in deliveries(app))


def test_platinum_failure_pages_once_per_channel_and_resolves(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    """Firing platinum alert: one PD trigger, one Slack message, one e-mail;
    recovery: one PD resolve."""
    httpserver.expect_request(PD_PATH, method="POST").respond_with_json({"status": "success"}, 202)
    httpserver.expect_request(SLACK_PATH, method="POST").respond_with_data("ok")
    box, port = mailbox
    app = make_app(
        notify_settings(httpserver, port),
        breaker=services_breaker(open_timeout_s=2.0, half_open_probation_s=1.0),
    )
    client = app.test_client()
    reply = client.post("/webhook/alertmanager", json=isolate_alert("p0"), headers=WEBHOOK)
    assert reply.status_code == 200
    work(app, settled(app))
    pd = requests_to(httpserver, PD_PATH)
    assert [e["event_action"] for e in pd] == ["trigger"]
    trigger = pd[0]
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["dedup_key"].startswith("INC-")
    assert trigger["payload"]["custom_details"]["tenants"]["p0"]["tier"] == "platinum"
    assert len(requests_to(httpserver, SLACK_PATH)) == 1
    assert len(box.messages) == 1
    assert sorted(box.messages[0].rcpt_tos) == ["oncall@example.com", "vip-desk@example.com"]

    opened_at = time.time()
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    resolved = isolate_alert("p0", status="resolved", ends_at=now)
    client.post("/webhook/alertmanager", json=resolved, headers=WEBHOOK)
    time.sleep(max(0.0, opened_at + 3.2 - time.time()))
    hub_services = services(app)
    sweep_all(hub_services, hub_services.clock())
    work(app, settled(app))
    pd = requests_to(httpserver, PD_PATH)
    assert [e["event_action"] for e in pd] == ["trigger", "resolve"]
    assert pd[1]["dedup_key"] == trigger["dedup_key"]
    incident = client.get(f"/api/v1/incidents/{trigger['dedup_key']}", headers=READER).get_json()
    assert incident["status"] == "resolved"
    assert any(e["kind"] == "notification" for e in incident["timeline"])


def services_breaker(**changes: float) -> Any:
    from receiver.config import BreakerSettings

    return BreakerSettings(**changes)


def test_pagerduty_500s_then_202_is_delivered_once(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    """Three 500s, then 202: retried with back-off, delivered exactly once."""
    for _ in range(3):
        httpserver.expect_ordered_request(PD_PATH).respond_with_data("boom", status=500)
    httpserver.expect_ordered_request(PD_PATH).respond_with_json({"status": "success"}, 202)
    app = make_app(notify_settings(httpserver, mailbox[1], routes={"P0": ("pagerduty",)}))
    app.test_client().post("/webhook/alertmanager", json=isolate_alert("p0"), headers=WEBHOOK)
    work(app, settled(app))
    [delivery] = deliveries(app)
    assert delivery["status"] == "sent" and delivery["attempts"] == 4
    assert [h["outcome"] for h in delivery["history"]] == ["retry", "retry", "retry", "sent"]
    assert len(requests_to(httpserver, PD_PATH)) == 4
    httpserver.check_assertions()


def test_slack_429_waits_for_retry_after(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    """429 with Retry-After: 2 schedules the next try 2 s later, then it is sent."""
    httpserver.expect_ordered_request(SLACK_PATH).respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "2"})
    )
    httpserver.expect_ordered_request(SLACK_PATH).respond_with_data("ok")
    app = make_app(notify_settings(httpserver, mailbox[1], routes={"P2": ("slack",)}))
    app.test_client().post("/webhook/alertmanager", json=isolate_alert("b00"), headers=WEBHOOK)
    work(app, settled(app))
    [delivery] = deliveries(app)
    retry, sent = delivery["history"]
    assert retry["outcome"] == "retry" and "429" in retry["detail"]
    assert sent["outcome"] == "sent"
    assert sent["at"] - retry["at"] >= 2.0
    assert len(requests_to(httpserver, SLACK_PATH)) == 2


def test_400_is_dead_lettered_and_visible(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    """A 4xx other than 429 fails at once, shows as failed in the API and the timeline."""
    httpserver.expect_request(SLACK_PATH).respond_with_data("invalid_payload", status=400)
    app = make_app(notify_settings(httpserver, mailbox[1], routes={"P2": ("slack",)}))
    app.test_client().post("/webhook/alertmanager", json=isolate_alert("b00"), headers=WEBHOOK)
    work(app, settled(app))
    [failed] = deliveries(app, "?status=failed")
    assert failed["attempts"] == 1 and "invalid_payload" in failed["last_error"]
    assert deliveries(app, "?status=sent") == []
    incident = (
        app.test_client()
        .get(f"/api/v1/incidents/{failed['incident_id']}", headers=READER)
        .get_json()
    )
    assert any(
        "failed" in e["message"] for e in incident["timeline"] if e["kind"] == "notification"
    )


def test_sent_delivery_is_not_sent_again(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    """Running a finished delivery's job again (a redelivered job) sends nothing."""
    httpserver.expect_request(SLACK_PATH).respond_with_data("ok")
    app = make_app(notify_settings(httpserver, mailbox[1], routes={"P2": ("slack",)}))
    app.test_client().post("/webhook/alertmanager", json=isolate_alert("b00"), headers=WEBHOOK)
    work(app, settled(app))
    [delivery] = deliveries(app)
    assert jobs.deliver(delivery["id"]) == "nothing to do"
    assert len(requests_to(httpserver, SLACK_PATH)) == 1


def test_tenant_updates_are_held_and_sent_together(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    """Bronze tenants joining one incident a few seconds apart: the opening goes at
    once, the joins wait and go as one message per channel when the interval is up,
    and a priority change goes at once even inside the interval."""
    clock = Clock()
    _, port = mailbox
    notify = notify_settings(httpserver, port, update_interval_s=60.0)
    app = make_app(notify, clock=clock, max_isolated_percent=100.0)  # the guard stays out
    client = app.test_client()

    def fail(tenant: str) -> None:
        reply = client.post("/webhook/alertmanager", json=isolate_alert(tenant), headers=WEBHOOK)
        assert reply.status_code == 200

    def sent() -> list[tuple[str, str]]:
        return sorted((d["event"], d["channel"]) for d in deliveries(app))

    fail("b00")
    assert sent() == [("opened", "email"), ("opened", "slack")]
    for tenant in ("b01", "b02"):
        clock.advance(5)
        fail(tenant)
    sweep_all(services(app), clock())
    assert len(sent()) == 2, "joins within the interval are held"

    clock.advance(51)  # 61 s after the opening message
    sweep_all(services(app), clock())
    update = [d for d in deliveries(app) if d["event"] == "tenant_isolated"]
    assert sorted(d["channel"] for d in update) == ["email", "slack"]
    slack = next(d for d in update if d["channel"] == "slack")
    assert "Since the last message* isolated: b01, b02; joined: b01, b02" in json.dumps(
        slack["payload"]
    )
    sweep_all(services(app), clock())
    assert len(sent()) == 4, "a held update goes once"

    clock.advance(5)
    for tenant in ("b03", "b04"):  # the fifth tenant makes it P1
        fail(tenant)
    raised = [d for d in deliveries(app) if d["event"] == "priority_raised"]
    assert sorted(d["channel"] for d in raised) == ["pagerduty", "slack"]
    assert len(sent()) == 6, "b03's join was held, then carried by the priority message"
    slack = next(d for d in raised if d["channel"] == "slack")
    assert "isolated: b03, b04; joined: b03, b04" in json.dumps(slack["payload"])
    assert services(app).hub.updates.client.zcard(UPDATES_DUE) == 0, "nothing left deferred"


def test_without_an_update_interval_every_join_is_sent(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    clock = Clock()
    _, port = mailbox
    app = make_app(notify_settings(httpserver, port, update_interval_s=0.0), clock=clock)
    client = app.test_client()
    for tenant in ("b00", "b01"):
        client.post("/webhook/alertmanager", json=isolate_alert(tenant), headers=WEBHOOK)
        clock.advance(5)
    events = sorted(d["event"] for d in deliveries(app) if d["channel"] == "slack")
    assert events == ["opened", "tenant_isolated"]


def test_updates_held_before_the_interval_was_turned_off_still_go(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    """Restarted with NOTIFY_UPDATE_INTERVAL_S=0, the receiver still sends what an
    earlier configuration held back."""
    clock = Clock()
    _, port = mailbox
    holding = make_app(notify_settings(httpserver, port, update_interval_s=60.0), clock=clock)
    for tenant in ("b00", "b01"):
        holding.test_client().post(
            "/webhook/alertmanager", json=isolate_alert(tenant), headers=WEBHOOK
        )
        clock.advance(5)
    assert [d["event"] for d in deliveries(holding) if d["channel"] == "slack"] == ["opened"]
    restarted = make_app(notify_settings(httpserver, port, update_interval_s=0.0), clock=clock)
    clock.advance(60)
    sweep_all(services(restarted), clock())
    slack = sorted(d["event"] for d in deliveries(restarted) if d["channel"] == "slack")
    assert slack == ["opened", "tenant_isolated"]
