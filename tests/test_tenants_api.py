"""The tenants API: reads, tier changes, operator actions, admission."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from receiver import create_app
from receiver.api.deps import EXTENSION
from receiver.breaker import Transition
from receiver.config import Settings
from receiver.pipeline import Tick, apply
from tests.conftest import ADMIN, READER, WEBHOOK, Clock, isolate_alert, with_registry

BASE = "/api/v1/tenants"


def fail(client: FlaskClient, tenant: str, **labels: str) -> None:
    assert (
        client.post(
            "/webhook/alertmanager", json=isolate_alert(tenant, **labels), headers=WEBHOOK
        ).status_code
        == 200
    )


def test_unseen_tenant_is_closed(client: FlaskClient) -> None:
    """A tenant never seen reads as closed and bronze, not 404."""
    body = client.get(f"{BASE}/newco", headers=READER).get_json()
    assert body["breaker"]["state"] == "closed"
    assert (body["tier"], body["tier_source"]) == ("bronze", "default")


def test_time_moves_open_to_half_open_to_closed_on_read(client: FlaskClient, clock: Clock) -> None:
    """Reads compute time-based transitions even before the sweep records them."""
    fail(client, "acme")
    client.post(
        "/webhook/alertmanager", json=isolate_alert("acme", status="resolved"), headers=WEBHOOK
    )
    clock.advance(61)
    body = client.get(f"{BASE}/acme", headers=READER).get_json()
    assert body["breaker"]["state"] == "half_open"
    assert body["breaker"]["transitions"][0]["to"] == "half_open"
    clock.advance(60)
    assert client.get(f"{BASE}/acme", headers=READER).get_json()["breaker"]["state"] == "closed"


def test_a_transition_recorded_between_the_reads_is_listed_once(
    app: Flask, client: FlaskClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A due transition the sweep records after the view read the breaker, before it
    read the log, is listed once: it is in the log now, no longer pending."""
    fail(client, "acme")
    clock.advance(61)
    services = app.extensions[EXTENSION]
    read_log = services.store.transitions

    def swept_then_read(scope: str, limit: int) -> list[Transition]:
        apply(services, Tick(), clock())
        return read_log(scope, limit)

    monkeypatch.setattr(services.store, "transitions", swept_then_read)
    breaker = client.get(f"{BASE}/acme", headers=READER).get_json()["breaker"]
    moves = [(t["from"], t["to"]) for t in breaker["transitions"]]
    assert (breaker["state"], moves) == ("half_open", [("open", "half_open"), ("closed", "open")])


def test_tier_comes_from_alert_label_then_registry(client: FlaskClient) -> None:
    """The alert's tier label counts until the registry says otherwise."""
    fail(client, "acme", tier="gold")
    body = client.get(f"{BASE}/acme", headers=READER).get_json()
    assert (body["tier"], body["tier_source"]) == ("gold", "alert")
    put = client.put(f"{BASE}/acme", json={"tier": "platinum"}, headers=ADMIN)
    assert put.status_code == 200
    assert (put.get_json()["tier"], put.get_json()["tier_source"]) == ("platinum", "registry")


def test_tenants_file_sets_tiers_and_indexes_tenants(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis, clock: Clock
) -> None:
    """TENANTS_FILE tenants are known from start-up with their tiers."""
    custom = with_registry(settings, tmp_path, {"acme": "platinum", "globex": "silver"})
    app = create_app(
        {"SETTINGS": custom, "REDIS_CLIENT": redis_client, "CLOCK": clock, "SWEEPER": False}
    )
    body = app.test_client().get(BASE, headers=READER).get_json()
    assert {(t["tenant_id"], t["tier"]) for t in body["items"]} == {
        ("acme", "platinum"),
        ("globex", "silver"),
    }


def test_list_is_paginated(client: FlaskClient) -> None:
    """page/per_page slice the known tenants; the total is the full count."""
    for i in range(5):
        fail(client, f"t{i}")
    first = client.get(f"{BASE}?page=1&per_page=2", headers=READER).get_json()
    last = client.get(f"{BASE}?page=3&per_page=2", headers=READER).get_json()
    beyond = client.get(f"{BASE}?page=9&per_page=2", headers=READER).get_json()
    assert (first["total"], len(first["items"]), len(last["items"]), beyond["items"]) == (
        5,
        2,
        1,
        [],
    )
    assert first["items"][0]["breaker"]["state"] == "open"


@pytest.mark.parametrize("query", ["page=0", "per_page=0", "per_page=501", "page=x"])
def test_bad_pagination_is_400(client: FlaskClient, query: str) -> None:
    """Out-of-range paging is the caller's fault and names the parameter."""
    response = client.get(f"{BASE}?{query}", headers=READER)
    assert response.status_code == 400
    assert query.split("=")[0] in response.get_json()["errors"]


def test_operator_actions(client: FlaskClient) -> None:
    """force_open isolates, force_close restores; each is one transition in the log."""
    opened = client.post(f"{BASE}/acme/breaker", json={"action": "force_open"}, headers=ADMIN)
    assert opened.get_json()["tenant"]["breaker"]["state"] == "forced_open"
    denied = client.get(f"{BASE}/acme/admission", headers=READER).get_json()
    assert denied == {
        "tenant_id": "acme",
        "allow": False,
        "would_allow": False,
        "state": "forced_open",
        "retry_after_s": None,
        "enforcement": "enforce",
    }
    closed = client.post(
        f"{BASE}/acme/breaker", json={"action": "force_close", "reason": "ok"}, headers=ADMIN
    ).get_json()
    assert closed["transitions"][0]["reason"] == "ok"
    assert [t["to"] for t in closed["tenant"]["breaker"]["transitions"]] == [
        "closed",
        "forced_open",
    ]


def test_disabled_breaker_does_not_trip(client: FlaskClient) -> None:
    """A disabled breaker records the suppressed trip and keeps serving."""
    client.post(f"{BASE}/acme/breaker", json={"action": "disable"}, headers=ADMIN)
    fail(client, "acme")
    body = client.get(f"{BASE}/acme", headers=READER).get_json()
    assert body["breaker"]["state"] == "disabled"
    assert body["breaker"]["transitions"][0]["suppressed"] is True
    assert client.get(f"{BASE}/acme/admission", headers=READER).get_json()["allow"] is True


def test_admission_of_open_tenant_says_when_to_retry(client: FlaskClient, clock: Clock) -> None:
    """Open: deny with retry_after_s counting down to half_open."""
    fail(client, "acme")
    clock.advance(20)
    body = client.get(f"{BASE}/acme/admission", headers=READER).get_json()
    assert body == {
        "tenant_id": "acme",
        "allow": False,
        "would_allow": False,
        "state": "open",
        "retry_after_s": 40,
        "enforcement": "enforce",
    }


def test_half_open_admits_about_the_probe_share(client: FlaskClient, clock: Clock) -> None:
    """Half-open lets roughly half_open_probe_percent (10%) of calls through."""
    fail(client, "acme")
    clock.advance(61)
    allowed = sum(
        client.get(f"{BASE}/acme/admission", headers=READER).get_json()["allow"] for _ in range(400)
    )
    assert 10 <= allowed <= 80  # 40 expected; bounds are > 4 sigma wide


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", f"{BASE}/acme", {"tier": "gold"}),
        ("post", f"{BASE}/acme/breaker", {"action": "reset"}),
    ],
)
def test_writes_need_the_admin_token(
    client: FlaskClient, method: str, path: str, body: dict[str, str]
) -> None:
    """The read token cannot change anything."""
    response = getattr(client, method)(path, json=body, headers=READER)
    assert response.status_code == 401


def test_reads_need_a_token(client: FlaskClient) -> None:
    """No token, no data; the webhook token does not read."""
    assert client.get(BASE).status_code == 401
    assert client.get(BASE, headers=WEBHOOK).status_code == 401
    assert client.get(BASE, headers=ADMIN).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (f"{BASE}/acme", {"tier": "diamond"}, "tier"),
        (f"{BASE}/acme/breaker", {"action": "explode"}, "action"),
        (f"{BASE}/acme/breaker", {}, "action"),
    ],
)
def test_invalid_write_bodies_are_422(
    client: FlaskClient, path: str, body: dict[str, str], field: str
) -> None:
    """Bad values name the field."""
    method = client.put if body.get("tier") else client.post
    response = method(path, json=body, headers=ADMIN)
    assert response.status_code == 422 and field in response.get_json()["errors"]


def test_invalid_tenant_id_in_path_is_400(client: FlaskClient) -> None:
    """A tenant id that could not be a Redis-safe key is refused before any lookup."""
    response = client.get(f"{BASE}/a%7Bb%7D", headers=READER)
    assert response.status_code == 400 and "tenant_id" in response.get_json()["errors"]
