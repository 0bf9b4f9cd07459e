"""`GET /api/v1/admission`, the deny-list feed: entries, ETag/304, one Redis read,
the long poll, the version across an HA pair, and the list filled after an upgrade."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
import requests
from flask.testing import FlaskClient

from receiver import create_app
from receiver.breaker import Breaker, State
from receiver.config import Enforcement, Settings
from receiver.store import Change, ScopeStore
from receiver.store import keys as k
from receiver.upkeep import sweep
from tests.conftest import ADMIN, READER, TOKENS_ENV, WEBHOOK, Clock, isolate_alert
from tests.servers import Receiver, RedisServer
from tests.test_admission_client import force_open

FEED = "/api/v1/admission"


def act(client: FlaskClient, tenant: str, action: str) -> None:
    reply = client.post(f"/api/v1/tenants/{tenant}/breaker", json={"action": action}, headers=ADMIN)
    assert reply.status_code == 200


def test_feed_lists_only_tenants_not_fully_admitted(client: FlaskClient, clock: Clock) -> None:
    """Open, then half open by time alone (with the probe share), forced open; closed absent."""
    assert client.get(FEED, headers=READER).get_json()["tenants"] == []
    client.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
    act(client, "globex", "force_open")
    act(client, "initech", "disable")
    listed = {e["tenant_id"]: e for e in client.get(FEED, headers=READER).get_json()["tenants"]}
    assert set(listed) == {"acme", "globex"}
    assert (listed["acme"]["state"], listed["acme"]["allowed_percent"]) == ("open", 0.0)
    assert listed["acme"]["retry_after_s"] == 60
    assert listed["acme"]["until"] == pytest.approx(clock() + 60)
    assert (listed["globex"]["state"], listed["globex"]["until"]) == ("forced_open", None)
    clock.advance(61)
    acme = client.get(FEED, headers=READER).get_json()["tenants"][0]
    assert (acme["state"], acme["allowed_percent"]) == ("half_open", 10.0)


def test_etag_answers_304_until_something_changes(client: FlaskClient, clock: Clock) -> None:
    """Same list, 304; a forced breaker or time alone moving a state, a new version."""
    first = client.get(FEED, headers=READER)
    etag = first.headers["ETag"]
    assert etag.strip('"') == first.get_json()["version"]
    assert client.get(FEED, headers={**READER, "If-None-Match": etag}).status_code == 304
    client.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
    opened = client.get(FEED, headers={**READER, "If-None-Match": etag})
    assert opened.status_code == 200
    etag = opened.headers["ETag"]
    clock.advance(30)
    assert client.get(FEED, headers={**READER, "If-None-Match": etag}).status_code == 304
    clock.advance(31)
    half_open = client.get(FEED, headers={**READER, "If-None-Match": etag})
    assert half_open.status_code == 200
    assert half_open.get_json()["tenants"][0]["state"] == "half_open"


def test_bad_wait_is_400(client: FlaskClient) -> None:
    """The long poll is bounded: more than 30 s, or not a number, is refused."""
    for wait in ("31", "-1", "soon"):
        assert client.get(f"{FEED}?wait={wait}", headers=READER).status_code == 400


def test_shadow_feed_allows_everyone_and_says_what_it_would_do(
    redis_client: redis.Redis, settings: Settings, clock: Clock
) -> None:
    """ENFORCEMENT=shadow: allowed_percent 100, would_allow_percent the real share."""
    shadow = replace(settings, enforcement=Enforcement.SHADOW)
    config = {"SETTINGS": shadow, "REDIS_CLIENT": redis_client, "CLOCK": clock, "SWEEPER": False}
    client = create_app(config).test_client()
    act(client, "acme", "force_open")
    body = client.get(FEED, headers=READER).get_json()
    assert body["enforcement"] == "shadow"
    assert [(e["allowed_percent"], e["would_allow_percent"]) for e in body["tenants"]] == [
        (100.0, 0.0)
    ]


@pytest.mark.redis
def test_feed_is_one_redis_command_however_many_tenants(
    real_redis: redis.Redis, settings: Settings, clock: Clock
) -> None:
    """10,000 known tenants, 10 isolated: one HGETALL, nothing else."""
    config = {"SETTINGS": settings, "REDIS_CLIENT": real_redis, "CLOCK": clock, "SWEEPER": False}
    client = create_app(config).test_client()
    real_redis.zadd(k.TENANTS, {f"t{i}": 1.0 for i in range(10_000)})
    for i in range(10):
        act(client, f"t{i}", "force_open")
    real_redis.config_resetstat()
    body = client.get(FEED, headers=READER).get_json()
    stats = real_redis.info("commandstats")
    used = {name: s["calls"] for name, s in stats.items() if not name.startswith("cmdstat_config")}
    assert len(body["tenants"]) == 10
    assert used == {"cmdstat_hgetall": 1}


@pytest.mark.redis
def test_sweep_fills_the_list_from_breakers_committed_before_it(
    real_redis: redis.Redis, settings: Settings, clock: Clock
) -> None:
    """After an upgrade the list is empty though breakers are open: the sweep fills it."""
    store = ScopeStore(real_redis, log_cap=100, seen_ttl_s=86400.0)
    real_redis.zadd(k.TENANTS, {"acme": 1.0, "globex": 1.0})
    real_redis.hset(k.scope_key("acme", "state"), mapping={"version": 3, "state": "forced_open"})
    assert store.admission.read().breakers == {}
    sweep(store, settings.breaker, clock())
    assert list(store.admission.read().breakers) == ["acme"]
    version = store.admission.read().version
    sweep(store, settings.breaker, clock())
    assert store.admission.read().version == version  # nothing left to repair


@pytest.mark.redis
def test_an_older_breaker_never_overwrites_a_newer_entry(real_redis: redis.Redis) -> None:
    """Two writers race to the list after their commits: the newer breaker's entry stays,
    whichever arrives last."""
    store = ScopeStore(real_redis, log_cap=100, seen_ttl_s=86400.0)
    store.admission.follow({"acme": (6, "")})
    store.admission.follow({"acme": (5, "forced_open\t\t\t0\t0")})
    assert store.admission.read().breakers == {}
    store.admission.follow({"acme": (7, "forced_open\t\t\t0\t0")})
    assert list(store.admission.read().breakers) == ["acme"]


@pytest.mark.redis
def test_the_sweep_repairs_an_entry_a_crash_left_behind(
    real_redis: redis.Redis, settings: Settings, clock: Clock
) -> None:
    """A process that died between a breaker's commit and the list's update (the commit
    written straight, without the step after it) is repaired by the next sweep."""
    store = ScopeStore(real_redis, log_cap=100, seen_ttl_s=86400.0)
    real_redis.zadd(k.TENANTS, {"acme": 1.0})
    forced = Breaker(state=State.FORCED_OPEN)
    assert store.commit([Change("acme", 0, breaker=forced)], clock()) == [1]
    assert store.admission.read().breakers == {}
    sweep(store, settings.breaker, clock())
    assert store.admission.read().breakers == {"acme": forced}


@pytest.fixture(scope="module")
def pair(redis_server: RedisServer) -> Iterator[tuple[Receiver, Receiver]]:
    """Two receivers on one Redis, as an HA pair runs."""
    env = {**TOKENS_ENV, "REDIS_URL": redis_server.url}
    first = Receiver(env, workers=1).start()
    second = Receiver(env, workers=1).start()
    yield first, second
    first.stop()
    second.stop()


@pytest.mark.redis
def test_an_ha_pair_gives_the_same_version(
    pair: tuple[Receiver, Receiver], real_redis: redis.Redis
) -> None:
    """Both receivers name the same state with the same version, and a 304 from one
    holds at the other."""
    first, second = pair
    force_open(first.url, "acme")
    a = requests.get(f"{first.url}{FEED}", headers=READER, timeout=5)
    b = requests.get(f"{second.url}{FEED}", headers=READER, timeout=5)
    assert a.json()["version"] == b.json()["version"]
    assert a.json()["tenants"] == b.json()["tenants"]
    again = requests.get(
        f"{second.url}{FEED}", headers={**READER, "If-None-Match": a.headers["ETag"]}, timeout=5
    )
    assert again.status_code == 304


@pytest.mark.redis
def test_long_poll_wakes_on_a_change(
    pair: tuple[Receiver, Receiver], real_redis: redis.Redis
) -> None:
    """A poll waiting on one receiver answers once the other commits a change."""
    first, second = pair
    etag = requests.get(f"{first.url}{FEED}", headers=READER, timeout=5).headers["ETag"]
    answers: list[requests.Response] = []

    def poll() -> None:
        headers = {**READER, "If-None-Match": etag}
        # Waits up to 30 s; a poll that never woke would fail on the 20 s timeout.
        answers.append(requests.get(f"{first.url}{FEED}?wait=30", headers=headers, timeout=20))

    waiting = threading.Thread(target=poll)
    waiting.start()
    try:
        force_open(second.url, "globex")
    finally:
        waiting.join()
    assert answers[0].status_code == 200
    assert [e["tenant_id"] for e in answers[0].json()["tenants"]] == ["globex"]
