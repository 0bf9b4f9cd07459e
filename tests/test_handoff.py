"""A delivery that finds another process at the incident board leaves its signals
there (the hand-off list) and answers at once; the board's next change applies them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from receiver import create_app
from receiver.alerts import Alert
from receiver.board import Signals
from receiver.breaker import State, Transition, TransitionEvent
from receiver.config import Settings
from receiver.store import handoff
from receiver.store import keys as k
from receiver.store.incidents import HANDOFF_FRESH_MS
from receiver.sweeper import sweep_all
from receiver.tenants import Tier
from tests.conftest import READER, WEBHOOK, Clock, isolate_alert, with_registry

TTL_MS = 5000
"""The turn's time to live as the receiver takes it (`IncidentStore.turn`)."""


@pytest.fixture
def app(tmp_path: Path, settings: Settings, redis_client: redis.Redis, clock: Clock) -> Flask:
    custom = with_registry(settings, tmp_path, {f"t{i:02d}": "gold" for i in range(20)})
    return create_app(
        {"SETTINGS": custom, "REDIS_CLIENT": redis_client, "CLOCK": clock, "SWEEPER": False}
    )


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return app.test_client()


def fail(api: FlaskClient, tenant: str) -> dict[str, Any]:
    response = api.post("/webhook/alertmanager", json=isolate_alert(tenant), headers=WEBHOOK)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def board_tenants(api: FlaskClient) -> dict[str, str]:
    items = api.get("/api/v1/incidents", headers=READER).get_json()["items"]
    return {t: tier for item in items for t, tier in item["tenants"].items()}


def handoffs() -> float:
    return REGISTRY.get_sample_value("blast_radius_board_handoffs_total") or 0.0


def live_holder(client: redis.Redis) -> None:
    """Another receiver has just taken the board's turn."""
    client.set(k.INCIDENTS_TURN, "another-receiver", px=TTL_MS)


def test_signals_survive_the_hand_off_list() -> None:
    alert = Alert(
        "firing",
        {"alertname": "TenantErrorRateHigh", "tenant_id": "t01", "action": "isolate"},
        {"summary": "ünïcode"},
        "2027-01-15T08:00:00.000Z",
        "0001-01-01T00:00:00Z",
        1.8e9,
        None,
        "fp-1",
        "http://prometheus/graph",
    )
    signals = Signals(
        alerts=[("t01", alert)],
        fresh={alert.delivery_key},
        group_key='{}:{tenant_id="t01"}',
        tiers={"t01": Tier.GOLD},
        held={"t02": "blast-radius guard: full"},
        transitions=[
            TransitionEvent("t01", Transition(State.CLOSED, State.OPEN, 1.8e9, "firing", False))
        ],
        partial=True,
        opened_at={"t03": 1.7e9},
    )
    back = handoff.decode(handoff.encode(signals))
    assert back == signals
    assert back.alerts[0][1].delivery_key == alert.delivery_key
    assert back.alerts[0][1].kind is alert.kind
    for text in ("[]", '[2, [], [], "", {}, {}, [], false, {}]', '{"a": 1}', "[1, [[1]]]"):
        with pytest.raises(ValueError):
            handoff.decode(text)


def test_a_join_finding_a_live_holder_hands_off_and_the_next_change_applies_it(
    api: FlaskClient, redis_client: redis.Redis
) -> None:
    """The breaker is committed and the answer comes at once, without the incident;
    the next board change (here: the next delivery, once the turn is free) applies
    the signals left, and the list is empty again."""
    fail(api, "t00")
    live_holder(redis_client)
    before = handoffs()
    answer = fail(api, "t01")
    assert answer["accepted"] == 1 and answer["incidents"] == []
    assert [t["to"] for t in answer["transitions"]] == ["open"]
    assert handoffs() == before + 1
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 1
    assert set(board_tenants(api)) == {"t00"}
    assert redis_client.get(k.INCIDENTS_TURN) == "another-receiver"  # left alone

    redis_client.delete(k.INCIDENTS_TURN)  # the holder gave it back
    fail(api, "t02")
    assert board_tenants(api) == {"t00": "gold", "t01": "gold", "t02": "gold"}
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 0
    assert not redis_client.exists(k.INCIDENTS_TURN)
    [incident] = api.get("/api/v1/incidents", headers=READER).get_json()["items"]
    timeline = api.get(f"/api/v1/incidents/{incident['id']}", headers=READER).get_json()
    opened = [e for e in timeline["timeline"] if e.get("tenant_id") == "t01"]
    assert [e["kind"] for e in opened].count("breaker") == 1  # its transition, once
    assert "t01" in timeline["isolated_at"]


def test_a_holder_that_kept_the_turn_too_long_gets_nothing(
    api: FlaskClient, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn taken longer ago than `HANDOFF_FRESH_MS` (its holder may be dead) gets
    no signals: the delivery waits for the turn as before, then goes ahead."""
    monkeypatch.setattr("receiver.store.incidents.TURN_WAIT_S", 0.2)
    fail(api, "t00")
    redis_client.set(k.INCIDENTS_TURN, "a stuck receiver", px=TTL_MS - HANDOFF_FRESH_MS - 500)
    answer = fail(api, "t01")
    assert answer["incidents"] != []
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 0
    assert set(board_tenants(api)) == {"t00", "t01"}


def test_a_change_without_the_turn_applies_what_a_dead_holder_was_left(
    api: FlaskClient, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signals left to a holder that then died are applied by the next change that
    reads them, turn or not: here one that waited its turn out."""
    monkeypatch.setattr("receiver.store.incidents.TURN_WAIT_S", 0.2)
    live_holder(redis_client)
    fail(api, "t00")
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 1
    redis_client.pexpire(k.INCIDENTS_TURN, TTL_MS - HANDOFF_FRESH_MS - 500)  # never renewed
    fail(api, "t01")
    assert set(board_tenants(api)) == {"t00", "t01"}
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 0
    assert redis_client.get(k.INCIDENTS_TURN) == "another-receiver"


def test_the_sweep_applies_what_was_left(
    app: Flask, api: FlaskClient, redis_client: redis.Redis
) -> None:
    live_holder(redis_client)
    fail(api, "t00")
    fail(api, "t01")
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 2 and board_tenants(api) == {}
    redis_client.delete(k.INCIDENTS_TURN)
    services = app.extensions["blast_radius"]
    sweep_all(services, services.clock())
    assert set(board_tenants(api)) == {"t00", "t01"}
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 0


def test_an_unreadable_hand_off_is_dropped_and_the_rest_applied(
    api: FlaskClient, redis_client: redis.Redis
) -> None:
    live_holder(redis_client)
    fail(api, "t00")
    redis_client.rpush(k.INCIDENTS_HANDOFF, "not signals")
    fail(api, "t01")
    redis_client.delete(k.INCIDENTS_TURN)
    fail(api, "t02")
    assert set(board_tenants(api)) == {"t00", "t01", "t02"}
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 0


def test_a_repeat_of_a_handed_off_delivery_lands_once(
    api: FlaskClient, redis_client: redis.Redis
) -> None:
    """Alertmanager retries a delivery whose signals are still waiting: both copies
    reach the board's next change, which applies the alert state once."""
    live_holder(redis_client)
    fail(api, "t00")
    again = fail(api, "t00")
    assert again["duplicates"] == 1
    redis_client.delete(k.INCIDENTS_TURN)
    fail(api, "t01")
    [incident] = api.get("/api/v1/incidents", headers=READER).get_json()["items"]
    assert incident["tenants_total"] == 2
    doc = api.get(f"/api/v1/incidents/{incident['id']}", headers=READER).get_json()
    assert [a["tenant_id"] for a in doc["alerts"]].count("t00") == 1
    assert [e["kind"] for e in doc["timeline"] if e.get("tenant_id") == "t00"].count("breaker") == 1


@pytest.mark.parametrize("redis_client", ["redis-server"], indirect=True)
def test_racing_joins_all_land_on_one_incident(
    settings: Settings, redis_client: redis.Redis, clock: Clock
) -> None:
    """Eight threads, 160 new tenants (the guard off): whether each applied its own
    signals or handed them off, once the last answer is in and the board's last
    change done, every tenant is on the one incident, isolated once, and nothing
    waits."""
    unguarded = Settings(**{**settings.__dict__, "max_isolated_percent": 100.0})
    app = create_app(
        {"SETTINGS": unguarded, "REDIS_CLIENT": redis_client, "CLOCK": clock, "SWEEPER": False}
    )
    tenants = [f"r{i:03d}" for i in range(160)]
    errors: list[BaseException] = []

    def post(part: list[str]) -> None:
        client = app.test_client()
        try:
            for tenant in part:
                fail(client, tenant)
        except BaseException as exc:
            errors.append(exc)

    before = handoffs()
    threads = [threading.Thread(target=post, args=(tenants[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert handoffs() > before  # the path under test was taken
    api = app.test_client()
    if redis_client.llen(k.INCIDENTS_HANDOFF):
        fail(api, "t19")  # the board's next change applies what the last holder left
    [incident] = api.get("/api/v1/incidents", headers=READER).get_json()["items"]
    doc = api.get(
        f"/api/v1/incidents/{incident['id']}/tenants?per_page=500", headers=READER
    ).get_json()
    on_board = {t["tenant_id"] for t in doc["items"]} - {"t19"}
    assert on_board == set(tenants)
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 0
    full = api.get(f"/api/v1/incidents/{incident['id']}", headers=READER).get_json()
    isolated = [e["tenant_id"] for e in full["timeline"] if e["kind"] == "breaker"]
    assert sorted(isolated) == sorted([*tenants, *(["t19"] if "t19" in isolated else [])])


def test_a_large_delivery_waits_for_the_turn_rather_than_hand_off(
    api: FlaskClient, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More alerts than `HANDOFF_MAX_ALERTS`: no hand-off that large is left; the
    delivery waits for the turn (here until a live holder's wait runs out)."""
    monkeypatch.setattr("receiver.correlate.HANDOFF_MAX_ALERTS", 2)
    monkeypatch.setattr("receiver.store.incidents.TURN_WAIT_S", 0.2)
    live_holder(redis_client)
    body = isolate_alert("t00")
    body["alerts"] = [isolate_alert(t)["alerts"][0] for t in ("t00", "t01", "t02")]
    response = api.post("/webhook/alertmanager", json=body, headers=WEBHOOK)
    assert response.status_code == 200 and response.get_json()["incidents"] != []
    assert redis_client.llen(k.INCIDENTS_HANDOFF) == 0
    assert set(board_tenants(api)) == {"t00", "t01", "t02"}
