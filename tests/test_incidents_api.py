"""Incidents through the webhook and the API, with a registry of 100 tenants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from receiver import create_app
from receiver.api.deps import EXTENSION
from receiver.config import Settings
from receiver.incident_doc import COLLECTIONS
from receiver.incidents import NOTES_CAP
from receiver.schemas import NOTE_MAX_CHARS
from receiver.store import keys as k
from receiver.store.incidents import BoardChange, IncidentStore
from receiver.sweeper import sweep_all
from tests.conftest import (
    ADMIN,
    READER,
    T0,
    WEBHOOK,
    Clock,
    isolate_alert,
    payload,
    with_registry,
)

FLEET = (
    [(f"p{i}", "platinum") for i in range(5)]
    + [(f"g{i}", "gold") for i in range(5)]
    + [(f"s{i:02d}", "silver") for i in range(20)]
    + [(f"b{i:02d}", "bronze") for i in range(70)]
)


@pytest.fixture
def fleet(tmp_path: Path, settings: Settings, redis_client: redis.Redis, clock: Clock) -> Flask:
    custom = with_registry(settings, tmp_path, dict(FLEET))
    return create_app(
        {"SETTINGS": custom, "REDIS_CLIENT": redis_client, "CLOCK": clock, "SWEEPER": False}
    )


@pytest.fixture
def api(fleet: Flask) -> FlaskClient:
    return fleet.test_client()


def fail(api: FlaskClient, *tenants: str, status: str = "firing") -> dict[str, Any]:
    body = isolate_alert(tenants[0], status=status)
    body["alerts"] = [isolate_alert(t, status=status)["alerts"][0] for t in tenants]
    response = api.post("/webhook/alertmanager", json=body, headers=WEBHOOK)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def incidents(api: FlaskClient, query: str = "") -> dict[str, Any]:
    response = api.get(f"/api/v1/incidents{query}", headers=READER)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def sweep(fleet: Flask) -> None:
    services = fleet.extensions["blast_radius"]
    sweep_all(services, services.clock())


@pytest.mark.parametrize(
    ("tenants", "priority"),
    [
        (["p0"], "P0"),
        ([f"b{i:02d}" for i in range(10)], "P0"),
        (["g0"], "P1"),
        ([f"s{i:02d}" for i in range(7)], "P1"),
        (["b00", "b01"], "P2"),
    ],
    ids=["single platinum", "10 bronze", "single gold", "7 silver", "2 bronze"],
)
def test_seed_scenarios(api: FlaskClient, tenants: list[str], priority: str) -> None:
    """Each seed scenario yields one incident with the expected priority, all isolated."""
    reply = fail(api, *tenants)
    assert len([t for t in reply["transitions"] if t["to"] == "open"]) == len(tenants)
    listed = incidents(api)
    assert listed["total"] == 1
    incident = listed["items"][0]
    assert (incident["priority"], incident["scope"]) == (priority, "tenant")
    assert sorted(incident["tenants"]) == sorted(tenants)


def test_tenants_join_within_the_window_and_raise_priority(api: FlaskClient, clock: Clock) -> None:
    """Silver tenants failing one by one join one incident: P2 -> P1 on the fifth."""
    for i in range(6):
        fail(api, f"s{i:02d}")
        clock.advance(30)
    listed = incidents(api)
    assert listed["total"] == 1
    full = api.get(f"/api/v1/incidents/{listed['items'][0]['id']}", headers=READER).get_json()
    assert full["priority"] == "P1"
    kinds = [e["kind"] for e in full["timeline"]]
    assert kinds.count("tenant_joined") == 6 and kinds.count("priority_changed") == 1
    assert kinds.count("breaker") == 6


def test_a_failure_after_the_window_opens_a_new_incident(api: FlaskClient, clock: Clock) -> None:
    """Correlation only spans the window (5 min by default)."""
    fail(api, "b00")
    clock.advance(301)
    fail(api, "b01")
    listed = incidents(api)
    assert listed["total"] == 2
    assert [i["tenants"] for i in listed["items"]] == [{"b01": "bronze"}, {"b00": "bronze"}]


def test_blast_radius_guard(api: FlaskClient) -> None:
    """25 of 100 tenants failing together: 20 isolated at most, one platform P0."""
    tenants = [f"b{i:02d}" for i in range(25)]
    reply = fail(api, *tenants)
    opened = [t for t in reply["transitions"] if t["to"] == "open" and not t["suppressed"]]
    held = [t for t in reply["transitions"] if t["suppressed"]]
    assert len(opened) == 20 and len(held) == 5
    assert "blast-radius guard" in held[0]["reason"]
    platform = incidents(api, "?scope=platform")["items"]
    assert len(platform) == 1 and platform[0]["priority"] == "P0"
    assert platform[0]["title"] == "suspected shared-resource failure"
    assert len(platform[0]["suppressed"]) == 5
    assert platform[0]["status"] == "open"
    fail(api, *tenants, status="resolved")
    assert incidents(api, "?scope=platform")["items"][0]["status"] == "resolved"
    states = api.get("/api/v1/tenants?per_page=500", headers=READER).get_json()["items"]
    assert sum(t["breaker"]["state"] == "open" for t in states) == 20


def test_a_trip_the_guard_refuses_is_held_back_and_the_turn_given_back(
    api: FlaskClient, redis_client: redis.Redis
) -> None:
    """20 of 100 tenants isolated: the 21st's trip is refused by the guard, held back,
    put on the platform incident, and the board's turn given back."""
    fail(api, *[f"b{i:02d}" for i in range(20)])
    reply = fail(api, "b20")
    assert [t["suppressed"] for t in reply["transitions"]] == [True]
    assert not redis_client.exists("br:{_incidents}:turn")
    platform = incidents(api, "?scope=platform")["items"]
    assert [p["suppressed"] for p in platform] == [["b20"]]


def test_platform_alert_opens_the_platform_incident(api: FlaskClient) -> None:
    """PlatformErrorRateHigh opens a platform P0 and isolates nobody."""
    body = payload("watchdog-firing.json")
    body["alerts"][0]["labels"] = {"alertname": "PlatformErrorRateHigh", "scope": "platform"}
    body["alerts"][0]["fingerprint"] = "plat"
    api.post("/webhook/alertmanager", json=body, headers=WEBHOOK)
    api.post("/webhook/alertmanager", json=body, headers=WEBHOOK)
    listed = incidents(api)
    assert listed["total"] == 1 and listed["items"][0]["scope"] == "platform"
    assert listed["items"][0]["priority"] == "P0"
    resolved = {**body, "status": "resolved"}
    resolved["alerts"] = [
        {**body["alerts"][0], "status": "resolved", "endsAt": "2026-11-27T13:30:00Z"}
    ]
    api.post("/webhook/alertmanager", json=resolved, headers=WEBHOOK)
    assert incidents(api)["items"][0]["status"] == "resolved"


def test_incident_resolves_when_alerts_resolved_and_breakers_closed(
    api: FlaskClient, fleet: Flask, clock: Clock
) -> None:
    """A resolved alert alone does not resolve it; the breaker closing does."""
    fail(api, "g0")
    clock.advance(20)
    fail(api, "g0", status="resolved")
    assert incidents(api)["items"][0]["status"] == "open"
    clock.advance(45)
    sweep(fleet)
    clock.advance(61)
    sweep(fleet)
    incident = incidents(api)["items"][0]
    assert incident["status"] == "resolved"
    assert incident["duration_s"] == pytest.approx(126)
    assert incident["impact"]["cost_per_hour"] == 60_000
    assert incident["impact"]["accrued"] == pytest.approx(60_000 * 126 / 3600)


def test_duplicate_and_retried_deliveries_do_not_double_count(api: FlaskClient) -> None:
    """Re-sent notifications leave one tenant entry and one alert on the incident."""
    for _ in range(3):
        fail(api, "b00")
    incident = incidents(api)["items"][0]
    full = api.get(f"/api/v1/incidents/{incident['id']}", headers=READER).get_json()
    assert len(full["alerts"]) == 1
    assert [e["kind"] for e in full["timeline"]].count("alert_firing") == 1


def test_lifecycle_and_postmortem(api: FlaskClient, fleet: Flask, clock: Clock) -> None:
    """Acknowledge, annotate, resolve, write the review, read the markdown."""
    fail(api, "p0")
    incident_id = incidents(api)["items"][0]["id"]
    base = f"/api/v1/incidents/{incident_id}"
    clock.advance(120)
    acked = api.post(f"{base}/acknowledge", json={"by": "asha"}, headers=ADMIN).get_json()
    assert acked["status"] == "acknowledged" and acked["acknowledged_at"] is not None
    assert (
        api.post(
            f"{base}/notes", json={"text": "bad embedding batch", "author": "asha"}, headers=ADMIN
        ).status_code
        == 200
    )
    review = {
        "root_cause": "an unbounded embedding batch from one tenant",
        "five_whys": ["the pool filled", "one query held 40 connections"],
        "action_items": [
            {"title": "cap batch size", "owner": "search-platform", "due": "2027-02-01"}
        ],
        "lessons": ["the breaker worked"],
    }
    assert api.put(f"{base}/postmortem", json=review, headers=ADMIN).status_code == 200
    clock.advance(600)
    resolved = api.post(f"{base}/resolve", json={"by": "asha"}, headers=ADMIN).get_json()
    assert resolved["status"] == "resolved"
    text = api.get(f"{base}/postmortem", headers=READER)
    assert text.mimetype == "text/markdown"
    markdown = text.get_data(as_text=True)
    for expected in [
        f"# Postmortem: {incident_id}",
        "**P0**",
        "Tenants affected: 1 (p0)",
        "platinum",
        "an unbounded embedding batch",
        "| cap batch size | search-platform | 2027-02-01 |",
        "time to acknowledge | 2 min 0 s",
        "time to resolve | 12 min 0 s",
        "## Five whys",
        "1. Why? the pool filled",
        "3. Why? _…_",
        "the breaker worked",
        "bad embedding batch",
        "damage avoided by containment",
        "detection to isolation",
    ]:
        assert expected in markdown, expected


def test_false_positive_feeds_the_stats(api: FlaskClient, clock: Clock) -> None:
    """Marked false positives count in the rate; MTTA/MTTR come from the lifecycle."""
    for tenant in ("b00", "b01"):
        fail(api, tenant)
        incident_id = incidents(api)["items"][0]["id"]
        clock.advance(60)
        api.post(f"/api/v1/incidents/{incident_id}/acknowledge", headers=ADMIN)
        clock.advance(60)
        api.post(f"/api/v1/incidents/{incident_id}/resolve", headers=ADMIN)
        clock.advance(400)
    api.post(
        f"/api/v1/incidents/{incident_id}/false-positive", json={"reason": "test"}, headers=ADMIN
    )
    stats = api.get("/api/v1/stats", headers=READER).get_json()
    assert stats["total"] == 2 and stats["false_positives"] == 1
    assert stats["false_positive_rate"] == 0.5
    assert stats["mtta_s"] == 60 and stats["mttr_s"] == 120
    assert stats["by_priority"] == {"P2": 2}
    assert stats["detection_to_isolation_s"]["count"] == 2


def test_filters_and_pagination(api: FlaskClient, clock: Clock) -> None:
    """Filters combine; pages past the end are empty; bad values are 400."""
    for tenant in ("b00", "g0", "b01"):
        fail(api, tenant)
        clock.advance(400)
    assert incidents(api, "?priority=P1")["total"] == 1
    assert incidents(api, "?tenant_id=b01")["items"][0]["tenants"] == {"b01": "bronze"}
    assert incidents(api, f"?since={clock.now - 500}")["total"] == 1
    page = incidents(api, "?per_page=2&page=2")
    assert page["total"] == 3 and len(page["items"]) == 1
    assert incidents(api, "?per_page=2&page=3")["items"] == []
    for bad in ("?status=closed", "?priority=P9", "?since=yesterday", "?per_page=0"):
        assert api.get(f"/api/v1/incidents{bad}", headers=READER).status_code == 400


def test_errors(api: FlaskClient) -> None:
    """Unknown incidents are 404; writes need the admin token; bad bodies are 422."""
    assert api.get("/api/v1/incidents/INC-0", headers=READER).status_code == 404
    assert api.post("/api/v1/incidents/INC-0/resolve", headers=ADMIN).status_code == 404
    fail(api, "b00")
    incident_id = incidents(api)["items"][0]["id"]
    base = f"/api/v1/incidents/{incident_id}"
    assert api.post(f"{base}/resolve", headers=READER).status_code == 401
    assert api.post(f"{base}/notes", json={"text": ""}, headers=ADMIN).status_code == 422
    bad_items = {"action_items": [{"title": "x"}]}
    assert api.put(f"{base}/postmortem", json=bad_items, headers=ADMIN).status_code == 422
    api.post(f"{base}/resolve", headers=ADMIN)
    assert api.post(f"{base}/acknowledge", headers=ADMIN).status_code == 409


def test_retention_drops_old_resolved_incidents(
    api: FlaskClient, fleet: Flask, clock: Clock, redis_client: redis.Redis
) -> None:
    """Resolved incidents past retention (90 days) disappear from every index."""
    fail(api, "b00")
    incident_id = incidents(api)["items"][0]["id"]
    api.post(f"/api/v1/incidents/{incident_id}/resolve", headers=ADMIN)
    clock.advance(89 * 86400)
    sweep(fleet)
    assert incidents(api)["total"] == 1
    clock.advance(2 * 86400)
    sweep(fleet)
    assert incidents(api)["total"] == 0
    assert api.get(f"/api/v1/incidents/{incident_id}", headers=READER).status_code == 404
    assert not redis_client.exists(f"br:{{_incidents}}:timeline:{incident_id}")


def test_held_trip_gets_a_freed_slot(api: FlaskClient, fleet: Flask, clock: Clock) -> None:
    """A tenant held back by the guard is isolated by the sweep once a slot frees,
    as long as its alert still fires (Alertmanager will not send it again)."""
    tenants = [f"b{i:02d}" for i in range(22)]
    reply = fail(api, *tenants)
    held = sorted(t["tenant_id"] for t in reply["transitions"] if t["suppressed"])
    assert len(held) == 2
    sweep(fleet)
    states = {
        t["tenant_id"]: t["breaker"]["state"]
        for t in api.get("/api/v1/tenants?per_page=500", headers=READER).get_json()["items"]
    }
    assert [states[t] for t in held] == ["closed", "closed"]
    opened = [t for t in tenants if t not in held][:2]
    fail(api, *opened, status="resolved")
    for tenant in opened:
        api.post(f"/api/v1/tenants/{tenant}/breaker", json={"action": "force_close"}, headers=ADMIN)
    clock.advance(5)
    sweep(fleet)
    for tenant in held:
        body = api.get(f"/api/v1/tenants/{tenant}", headers=READER).get_json()
        assert body["breaker"]["state"] == "open"
        assert "a guard slot is free" in body["breaker"]["transitions"][0]["reason"]


def test_the_timeline_is_appended_beside_the_incident_and_capped(
    api: FlaskClient, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change appends its events to the incident's list instead of rewriting them
    in its document; the list keeps the first event and the newest ones."""
    monkeypatch.setattr("receiver.incidents.TIMELINE_CAP", 5)
    monkeypatch.setattr("receiver.store.incidents.TIMELINE_CAP", 5)
    for i in range(8):
        fail(api, f"b{i:02d}")
    incident_id = incidents(api)["items"][0]["id"]
    doc = json.loads(redis_client.get(f"br:{{_incidents}}:incident:{incident_id}"))  # type: ignore[arg-type]
    assert "timeline" not in doc and "tenants" not in doc and doc["counts"]["tenants"] == 8
    assert redis_client.hlen(f"br:{{_incidents}}:tenants:{incident_id}") == 8
    stored = redis_client.lrange(f"br:{{_incidents}}:timeline:{incident_id}", 0, -1)
    assert 5 <= len(stored) <= 10  # type: ignore[arg-type]
    assert json.loads(stored[0])["kind"] == "opened"  # type: ignore[index]
    shown = api.get(f"/api/v1/incidents/{incident_id}", headers=READER).get_json()["timeline"]
    assert len(shown) == 5 and shown[0]["kind"] == "opened"
    assert any(e["tenant_id"] == "b07" for e in shown)


def test_an_incident_stored_whole_in_its_document_moves_out_on_the_next_change(
    api: FlaskClient, redis_client: redis.Redis
) -> None:
    """An incident stored the old way, timeline and collections inside its document,
    still shows the same, and the next change moves them to their lists and hashes."""
    fail(api, "b00", "b01")
    incident_id = incidents(api)["items"][0]["id"]
    doc_key = f"br:{{_incidents}}:incident:{incident_id}"
    list_key = f"br:{{_incidents}}:timeline:{incident_id}"
    before = api.get(f"/api/v1/incidents/{incident_id}", headers=READER).get_json()
    doc = json.loads(redis_client.get(doc_key))  # type: ignore[arg-type]
    for name in ("layout", "counts", "tier_counts", "victim_tiers", "live_alerts"):
        doc.pop(name)
    doc["timeline"] = [json.loads(e) for e in redis_client.lrange(list_key, 0, -1)]  # type: ignore[union-attr]
    doc["tenants"] = dict(before["tenants"])
    doc["alerts"] = {a["fingerprint"]: a for a in before["alerts"]}
    for name in ("isolated_at", "victims", "suppressed", "group_keys"):
        doc[name] = before[name]
    parts = [k.incident_part_key(incident_id, part) for part in COLLECTIONS]
    redis_client.delete(list_key, *parts)
    redis_client.set(doc_key, json.dumps(doc))
    shown = api.get(f"/api/v1/incidents/{incident_id}", headers=READER).get_json()
    assert shown == before
    acked = api.post(f"/api/v1/incidents/{incident_id}/acknowledge", headers=ADMIN).get_json()
    kinds = [e["kind"] for e in before["timeline"]]
    assert [e["kind"] for e in acked["timeline"]] == [*kinds, "acknowledged"]
    assert acked["tenants"] == before["tenants"] and acked["alerts"] == before["alerts"]
    assert "tenants" not in json.loads(redis_client.get(doc_key))  # type: ignore[arg-type]
    assert redis_client.llen(list_key) == len(before["timeline"]) + 1
    assert redis_client.hlen(f"br:{{_incidents}}:tenants:{incident_id}") == 2


def test_a_sweep_keeps_the_expiry_bound_its_walk_found(
    api: FlaskClient, fleet: Flask, redis_client: redis.Redis, clock: Clock
) -> None:
    """A document without the bound (stored before it was kept) is walked by the next
    sweep, which stores the bound it found: later sweeps walk only once it is due."""
    fail(api, "b00")
    clock.advance(10)
    fail(api, "b01")
    incident_id = incidents(api)["items"][0]["id"]
    doc_key = f"br:{{_incidents}}:incident:{incident_id}"
    doc = json.loads(redis_client.get(doc_key))  # type: ignore[arg-type]
    assert doc["live_seen_from"] == T0
    doc["live_seen_from"] = None
    redis_client.set(doc_key, json.dumps(doc))
    clock.advance(5)
    sweep(fleet)
    assert json.loads(redis_client.get(doc_key))["live_seen_from"] == T0  # type: ignore[arg-type]
    timeout = fleet.extensions[EXTENSION].settings.incidents.alert_timeout_s
    clock.advance(timeout - 15)  # b00's alert is due, b01's is not
    sweep(fleet)
    shown = api.get(f"/api/v1/incidents/{incident_id}", headers=READER).get_json()
    assert [a["tenant_id"] for a in shown["alerts"] if a["expired"]] == ["b00"]
    assert json.loads(redis_client.get(doc_key))["live_seen_from"] == T0 + 10  # type: ignore[arg-type]


def test_a_turn_never_released_delays_the_board_but_does_not_block_it(
    api: FlaskClient, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes queue for their turn at the board; if its holder died, they go ahead
    after the wait (the version check keeps them right) and leave its lock alone."""
    monkeypatch.setattr("receiver.store.incidents.TURN_WAIT_S", 0.2)
    redis_client.set("br:{_incidents}:turn", "a process that died", px=60_000)
    fail(api, "b00")
    fail(api, "b01")
    assert incidents(api)["items"][0]["tenants"] == {"b00": "bronze", "b01": "bronze"}
    assert redis_client.get("br:{_incidents}:turn") == "a process that died"


def test_a_turn_is_taken_and_given_back(fleet: Flask, redis_client: redis.Redis) -> None:
    store = fleet.extensions["blast_radius"].incidents
    with store.turn() as had:
        assert had and redis_client.exists("br:{_incidents}:turn")
        with store.turn(wait_s=0.05) as second:
            assert not second
    assert not redis_client.exists("br:{_incidents}:turn")


def test_notes_are_bounded_and_kept_beside_the_document(api: FlaskClient, fleet: Flask) -> None:
    """At most NOTES_CAP notes of NOTE_MAX_CHARS each; they live in their own list, so
    the incident's document does not grow with them; the API and postmortem show all."""
    fail(api, "b00")
    incident_id = incidents(api)["items"][0]["id"]
    base = f"/api/v1/incidents/{incident_id}"
    too_long = {"text": "x" * (NOTE_MAX_CHARS + 1)}
    assert api.post(f"{base}/notes", json=too_long, headers=ADMIN).status_code == 422
    store = fleet.extensions[EXTENSION].incidents.client
    before = len(store.get(k.incident_key(incident_id)))
    for n in range(NOTES_CAP):
        note = {"text": f"{n:03d}" + "y" * (NOTE_MAX_CHARS - 3), "author": "asha"}
        assert api.post(f"{base}/notes", json=note, headers=ADMIN).status_code == 200
    full = api.post(f"{base}/notes", json={"text": "one more"}, headers=ADMIN)
    assert full.status_code == 409 and full.get_json()["code"] == 409
    # Notes took only a counter in the document; the timeline grew by its note events.
    assert len(store.get(k.incident_key(incident_id))) - before < 100
    assert store.llen(k.notes_key(incident_id)) == NOTES_CAP
    shown = api.get(base, headers=READER).get_json()
    assert [n["text"][:3] for n in shown["notes"]] == [f"{n:03d}" for n in range(NOTES_CAP)]
    assert "099yyy" in api.get(f"{base}/postmortem", headers=READER).get_data(as_text=True)


def test_a_commit_gives_its_turn_back(fleet: Flask, redis_client: redis.Redis) -> None:
    """The change made in a turn releases it in the same step; the exit finds it gone."""
    store = fleet.extensions["blast_radius"].incidents
    with store.turn() as turn:
        board = store.board(T0)
        assert store.commit(BoardChange(board.version, {"probe": "1"}), T0, turn)
        assert turn.released and not redis_client.exists("br:{_incidents}:turn")
        redis_client.set("br:{_incidents}:turn", "another process")
    assert redis_client.get("br:{_incidents}:turn") == "another process"


def test_a_join_within_the_update_interval_is_deferred_as_it_commits(
    api: FlaskClient, redis_client: redis.Redis
) -> None:
    """After the opening message, a tenant joining is written to the incident's next
    update by the board commit itself: nothing waits in the outbox."""
    fail(api, "b00")
    incident_id = incidents(api)["items"][0]["id"]
    assert redis_client.hexists(k.UPDATES_SENT, incident_id)
    fail(api, "b01")
    assert redis_client.llen(k.INCIDENTS_OUTBOX) == 0
    deferred = redis_client.smembers(k.deferred_update_key(incident_id))
    assert {"tenant_joined:b01", "tenant_isolated:b01"} <= deferred  # type: ignore[operator]
    assert redis_client.zscore(k.UPDATES_DUE, incident_id) is not None


def test_a_sweep_asks_for_the_held_trips_slots_together(api: FlaskClient, fleet: Flask) -> None:
    """Held trips retry their slots in one script call per batch of tenants, not one
    each: a storm that leaves thousands held costs a sweep a few round trips."""
    tenants = [f"b{i:02d}" for i in range(60)]
    reply = fail(api, *tenants)
    held = [t["tenant_id"] for t in reply["transitions"] if t["suppressed"]]
    assert len(held) >= 40
    slots = fleet.extensions["blast_radius"].store.slots
    script, calls = slots._acquire, []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(kwargs["args"]) - 2)
        return script(*args, **kwargs)

    slots._acquire = counted
    sweep(fleet)
    assert len(calls) == 1 and calls[0] >= len(held)


def test_a_lazy_turn_is_taken_by_the_board_read(fleet: Flask, redis_client: redis.Redis) -> None:
    """With `lazy`, the first board read takes the turn in its own round trip."""
    store = fleet.extensions["blast_radius"].incidents
    with store.turn(lazy=True) as turn:
        assert not turn and not redis_client.exists("br:{_incidents}:turn")
        store.board(T0, turn=turn)
        assert turn and redis_client.get("br:{_incidents}:turn") == turn.token
    assert not redis_client.exists("br:{_incidents}:turn")


def test_a_join_while_another_holds_the_boards_turn_waits_for_it(
    api: FlaskClient, redis_client: redis.Redis
) -> None:
    """Another process holds the board's turn: the delivery waits for it (given back,
    or expired) and both tenants are on one incident, the turn given back after."""
    fail(api, "b00")
    redis_client.set("br:{_incidents}:turn", "another-process", px=300)
    fail(api, "b01")
    [incident] = incidents(api)["items"]
    assert incident["tenants_total"] == 2
    assert not redis_client.exists("br:{_incidents}:turn")


def test_a_board_read_reads_the_incidents_open_at_its_last_read_with_the_state(
    api: FlaskClient, fleet: Flask, redis_client: redis.Redis
) -> None:
    """The incidents open at a store's last read go in the state's round trip; one
    opened since (by another process) takes a second, one closed since is left out."""
    other = IncidentStore(redis_client, seen_ttl_s=3600)
    direct: list[int] = []
    script = other._read

    def counted(*args: Any, **kwargs: Any) -> Any:
        if "client" not in kwargs:
            direct.append(len(kwargs.get("keys") or args[0]))
        return script(*args, **kwargs)

    other._read = counted  # type: ignore[method-assign]
    fail(api, "b00")
    incident_id = incidents(api)["items"][0]["id"]
    first = other.board(T0, wanted={"tenants": ["b00"]})
    assert list(first.incidents) == [incident_id] and len(direct) == 1
    again = other.board(T0, wanted={"tenants": ["b00"]})
    assert list(again.incidents) == [incident_id] and len(direct) == 1
    assert again.incidents[incident_id].tenants.get("b00") is not None
    api.post(f"/api/v1/incidents/{incident_id}/resolve", headers=ADMIN)
    assert other.board(T0).incidents == {} and len(direct) == 1


def test_a_payload_of_many_tenants_is_all_on_the_board_and_its_repeat_is_seen(
    fleet: Flask, redis_client: redis.Redis
) -> None:
    """1,200 new tenants in one payload, more than one command of the board's commit
    takes: every tenant is on an incident (isolated, or held back by the guard), the
    board has seen every alert state, and the repeat changes nothing."""
    fleet.config["MAX_CONTENT_LENGTH"] = 4 * 1024 * 1024
    api = fleet.test_client()
    tenants = [f"n{i:04d}" for i in range(1200)]
    first = fail(api, *tenants)
    assert first["accepted"] == 1200
    listed = incidents(api, "?per_page=10")["items"]
    counts = {i["scope"]: i["tenants_total"] for i in listed}
    assert sum(counts.values()) == 1200
    assert counts["tenant"] == (len(FLEET) + 1200) // 5  # the guard's 20% of all known
    assert redis_client.zcard(k.INCIDENTS_SEEN) == 1200
    for item in listed:
        stored = redis_client.llen(k.timeline_key(item["id"]))
        assert 0 < stored <= 1000  # type: ignore[operator]
    again = fail(api, *tenants)
    assert (again["accepted"], again["duplicates"], again["incidents"]) == (0, 1200, [])
    assert incidents(api, "?per_page=10")["items"] == listed
