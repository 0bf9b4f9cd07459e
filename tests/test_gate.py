"""`/gate`, the forward-auth check, and shadow mode on the per-tenant admission API."""

from __future__ import annotations

import dataclasses
import re

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from receiver import create_app
from receiver.config import Enforcement, GateSettings, Settings
from tests.conftest import ADMIN, READER, WEBHOOK, Clock, isolate_alert
from tests.servers import free_port

TENANT = {"X-Tenant-ID": "acme", **READER}


def force_open(client: FlaskClient, tenant: str = "acme") -> None:
    reply = client.post(
        f"/api/v1/tenants/{tenant}/breaker", json={"action": "force_open"}, headers=ADMIN
    )
    assert reply.status_code == 200


def app_with(app: Flask, clock: Clock, **changes: object) -> FlaskClient:
    """The fixture's app on the same Redis, with settings changed."""
    services = app.extensions["blast_radius"]
    settings = dataclasses.replace(services.settings, **changes)
    config = {"SETTINGS": settings, "REDIS_CLIENT": services.store.client, "CLOCK": clock}
    return create_app({**config, "SWEEPER": False}).test_client()


def would_deny(client: FlaskClient, tenant: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    found = re.search(rf'^blast_radius_would_deny_total{{tenant_id="{tenant}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/gate", "/gate/", "/gate/v1/orders/7"])
def test_healthy_tenant_is_allowed_on_any_method_and_path(
    client: FlaskClient, method: str, path: str
) -> None:
    """200 with the state, whatever method and path the gateway forwards."""
    reply = client.open(path, method=method, headers=TENANT)
    assert (reply.status_code, reply.headers["X-Blast-Radius-State"]) == (200, "closed")


def test_isolated_tenant_is_denied_with_retry_after(client: FlaskClient) -> None:
    """An open breaker answers the deny status (429) with Retry-After and a JSON reason."""
    assert (
        client.post(
            "/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK
        ).status_code
        == 200
    )
    reply = client.get("/gate", headers=TENANT)
    assert reply.status_code == 429
    assert int(reply.headers["Retry-After"]) > 0
    assert reply.headers["X-Blast-Radius-State"] == "open"
    assert reply.get_json()["allow"] is False
    assert client.get("/gate", headers={**READER, "X-Tenant-ID": "globex"}).status_code == 200


def test_a_gateway_can_ask_for_its_own_deny_status(client: FlaskClient) -> None:
    """nginx sends X-Blast-Radius-Deny-Status: 403; a 5xx is never taken."""
    force_open(client)
    asks = {"403": 403, "401": 401, "503": 429, "junk": 429}
    for asked, status in asks.items():
        headers = {**TENANT, "X-Blast-Radius-Deny-Status": asked}
        assert client.get("/gate", headers=headers).status_code == status


def test_no_token_is_401(client: FlaskClient) -> None:
    """The gateway must send the API token."""
    assert client.get("/gate", headers={"X-Tenant-ID": "acme"}).status_code == 401


def test_no_tenant_is_allowed_or_denied_by_setting(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    """Without a tenant: allowed by default, the deny status with GATE_NO_TENANT=deny."""
    assert client.get("/gate", headers=READER).status_code == 200
    strict = app_with(app, clock, gate=GateSettings(no_tenant_allow=False))
    reply = strict.get("/gate", headers=READER)
    assert (reply.status_code, reply.headers["X-Blast-Radius-State"]) == (429, "no_tenant")


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({"X-Original-URI": "/t/acme/orders"}, "/gate"),
        ({"X-Forwarded-Uri": "/t/acme/orders"}, "/gate"),
        ({}, "/gate/t/acme/orders"),
    ],
)
def test_tenant_from_the_uri_pattern(
    app: Flask, client: FlaskClient, clock: Clock, headers: dict[str, str], path: str
) -> None:
    """nginx's X-Original-URI, Traefik's X-Forwarded-Uri, or Envoy's path under /gate."""
    force_open(client)
    pattern = re.compile(r"^/t/(?P<tenant>[^/]+)/")
    by_path = app_with(app, clock, gate=GateSettings(tenant_pattern=pattern))
    assert by_path.get(path, headers={**READER, **headers}).status_code == 429
    assert by_path.get("/gate/t/globex/x", headers=READER).status_code == 200


def test_half_open_answers_are_not_cached_by_nginx(client: FlaskClient, clock: Clock) -> None:
    """Each half-open request is a probe: X-Accel-Expires: 0, allowed or not."""
    assert (
        client.post(
            "/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK
        ).status_code
        == 200
    )
    clock.advance(61)
    replies = [client.get("/gate", headers=TENANT) for _ in range(40)]
    assert {r.headers["X-Blast-Radius-State"] for r in replies} == {"half_open"}
    assert {r.headers["X-Accel-Expires"] for r in replies} == {"0"}
    assert {r.status_code for r in replies} <= {200, 429}


@pytest.mark.parametrize("fail_open", [True, False])
def test_store_down_fails_open_or_closed_never_5xx(
    settings: Settings, clock: Clock, fail_open: bool
) -> None:
    """Redis unreachable: 200 and a header saying so, or the deny status."""
    dead = redis.Redis(port=free_port(), decode_responses=True, socket_timeout=0.2)
    gate = dataclasses.replace(settings.gate, fail_open=fail_open)
    config = {"SETTINGS": dataclasses.replace(settings, gate=gate), "REDIS_CLIENT": dead}
    client = create_app({**config, "CLOCK": clock, "SWEEPER": False}).test_client()
    reply = client.get("/gate", headers=TENANT)
    if fail_open:
        assert (reply.status_code, reply.headers["X-Blast-Radius-Fail-Open"]) == (
            200,
            "store unavailable",
        )
    else:
        assert (reply.status_code, reply.headers["Retry-After"]) == (429, "5")


def test_shadow_mode_allows_and_counts_would_denies(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    """ENFORCEMENT=shadow: 200 with X-Blast-Radius-Would-Deny, and the counter rises."""
    force_open(client)
    shadow = app_with(app, clock, enforcement=Enforcement.SHADOW)
    before = would_deny(shadow, "acme")
    reply = shadow.get("/gate", headers=TENANT)
    assert (reply.status_code, reply.headers["X-Blast-Radius-Would-Deny"]) == (200, "forced_open")
    admission = shadow.get("/api/v1/tenants/acme/admission", headers=READER)
    body = admission.get_json()
    assert (body["allow"], body["would_allow"], body["enforcement"]) == (True, False, "shadow")
    assert admission.headers["X-Blast-Radius-Would-Deny"] == "forced_open"
    assert would_deny(shadow, "acme") == before + 2
    assert client.get("/gate", headers=TENANT).status_code == 429


def test_shadow_mode_incidents_say_so(app: Flask, clock: Clock) -> None:
    """An incident read from a shadow-mode receiver says nothing was enforced."""
    shadow = app_with(app, clock, enforcement=Enforcement.SHADOW)
    shadow.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
    items = shadow.get("/api/v1/incidents", headers=READER).get_json()["items"]
    assert [i["enforcement"] for i in items] == ["shadow"]


def test_token_may_come_in_its_own_header(client: FlaskClient) -> None:
    """Traefik's ForwardAuth copies X-Blast-Radius-Token; a wrong one is still 401."""
    headers = {"X-Tenant-ID": "acme", "X-Blast-Radius-Token": READER["Authorization"][7:]}
    assert client.get("/gate", headers=headers).status_code == 200
    wrong = {**headers, "X-Blast-Radius-Token": "not-the-token-0000000000"}
    assert client.get("/gate", headers=wrong).status_code == 401
