"""Faults on the deployed shape (gunicorn with four workers, a real redis-server):
racing deliveries across workers, and Redis going away and coming back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.conftest import ADMIN, READER, TOKENS_ENV, WEBHOOK, isolate_alert
from tests.servers import Receiver, RedisServer, wait_for

pytestmark = pytest.mark.redis

ENVELOPE = {"status", "code", "message", "errors", "request_id"}
STARTS = {"A": "2027-01-15T08:00:00.000Z", "B": "2027-01-15T08:10:00.000Z"}
ENDS = {"A": "2027-01-15T08:05:00.000Z", "B": "2027-01-15T08:15:00.000Z"}


def notification(tenant_id: str, status: str, episode: str) -> dict[str, Any]:
    """The tenant's isolation alert, firing or resolved, in one of two episodes."""
    body = isolate_alert(tenant_id, status=status, starts_at=STARTS[episode])
    if status == "resolved":
        body["alerts"][0]["endsAt"] = ENDS[episode]
    return body


def assert_envelope(response: requests.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ENVELOPE and body["status"] == "error" and body["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.text and "redis" not in body["message"].lower()
    return body


def get(receiver: Receiver, path: str) -> requests.Response:
    return requests.get(f"{receiver.url}{path}", headers=READER, timeout=10)


@pytest.fixture
def four_workers(
    redis_server: RedisServer, real_redis: redis.Redis, tmp_path: Path
) -> Iterator[Receiver]:
    """120 registered tenants, so the guard's cap (20%) is 24 isolated tenants."""
    registry = tmp_path / "tenants.yml"
    registry.write_text(
        "tenants:\n" + "".join(f"  t{i:03d}: {{tier: silver}}\n" for i in range(120))
    )
    env = {**TOKENS_ENV, "REDIS_URL": redis_server.url, "TENANTS_FILE": str(registry)}
    server = Receiver(env, workers=4).start()
    yield server
    server.stop()


def test_racing_workers_record_each_change_once(four_workers: Receiver) -> None:
    """50 copies of one alert race 20 tenants' firing/resolved sequences across four
    workers: one transition per tenant, every alert state applied once, one incident."""
    url = f"{four_workers.url}/webhook/alertmanager"
    hot = notification("t100", "firing", "A")
    sequence = [
        ("firing", "A"),
        ("firing", "A"),
        ("resolved", "A"),
        ("resolved", "A"),
        ("firing", "B"),
        ("resolved", "B"),
    ]
    flappers = [f"t{i:03d}" for i in range(20)]

    def deliver(body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(url, json=body, headers=WEBHOOK, timeout=30)
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply

    def flap(tenant_id: str) -> list[dict[str, Any]]:
        """In order, as Alertmanager delivers one group."""
        return [deliver(notification(tenant_id, *step)) for step in sequence]

    with ThreadPoolExecutor(max_workers=70) as pool:
        hot_replies = pool.map(deliver, [hot] * 50)
        flap_replies = pool.map(flap, flappers)
        replies = list(hot_replies) + [r for batch in flap_replies for r in batch]

    states = 1 + len(flappers) * 4
    assert sum(r["accepted"] for r in replies) == states
    assert sum(r["duplicates"] for r in replies) == len(replies) - states
    assert sum(len(r["transitions"]) for r in replies) == 1 + len(flappers)

    for tenant_id in ["t100", *flappers]:
        breaker = get(four_workers, f"/api/v1/tenants/{tenant_id}").json()["breaker"]
        moves = [(t["from"], t["to"], t["suppressed"]) for t in breaker["transitions"]]
        assert moves == [("closed", "open", False)], tenant_id
        assert breaker["firing_alerts"] == ([] if tenant_id != "t100" else ["fp-t100"])

    listed = get(four_workers, "/api/v1/incidents").json()
    assert listed["total"] == 1
    incident = get(four_workers, f"/api/v1/incidents/{listed['items'][0]['id']}").json()
    assert set(incident["tenants"]) == {"t100", *flappers}
    for tenant_id in flappers:
        kinds = [e["kind"] for e in incident["timeline"] if e["tenant_id"] == tenant_id]
        assert (kinds.count("alert_firing"), kinds.count("alert_resolved")) == (2, 2)
        assert (kinds.count("tenant_joined"), kinds.count("breaker")) == (1, 1)


def test_redis_outage_answers_503_and_recovers_without_restart(tmp_path: Path) -> None:
    """Redis stops while deliveries arrive: every answer is 200 or a 503 envelope with
    Retry-After. Redis restarts on the same port, empty: the same receiver serves
    again, and the deliveries Alertmanager retries rebuild the state."""
    store = RedisServer().start()
    # Redis comes back empty, registry included: the guard would count 2 tenants and cap
    # isolation at 1. This test is about recovery, so the guard is off.
    env = {
        **TOKENS_ENV,
        "REDIS_URL": store.url,
        "REDIS_TIMEOUT_S": "0.5",
        "GUARD_MAX_ISOLATED_PERCENT": "100",
    }
    receiver = Receiver(env, workers=2).start()
    url = f"{receiver.url}/webhook/alertmanager"
    during: list[requests.Response] = []
    stop = threading.Event()

    def keep_delivering() -> None:
        while not stop.is_set():
            body = notification("globex", "firing", "A")
            during.append(requests.post(url, json=body, headers=WEBHOOK, timeout=10))

    try:
        first = requests.post(
            url, json=notification("acme", "firing", "A"), headers=WEBHOOK, timeout=10
        )
        assert first.status_code == 200
        sender = threading.Thread(target=keep_delivering)
        sender.start()
        wait_for(lambda: len(during) >= 3, 10, "deliveries before the outage")
        store.stop()
        wait_for(lambda: during[-1].status_code == 503, 10, "deliveries to fail")
        stop.set()
        sender.join()
        assert {r.status_code for r in during} <= {200, 503}
        for response in during:
            if response.status_code == 503:
                assert_envelope(response, 503)
                assert int(response.headers["Retry-After"]) > 0

        refused = requests.post(
            url, json=notification("acme", "firing", "B"), headers=WEBHOOK, timeout=10
        )
        assert "Retry-After" in refused.headers
        assert assert_envelope(refused, 503)["message"] == "store unavailable; retry later"
        for path in (
            "/api/v1/tenants/acme",
            "/api/v1/tenants/acme/admission",
            "/api/v1/incidents",
            "/api/v1/tenants",
        ):
            assert_envelope(get(receiver, path), 503)
        forced = requests.post(
            f"{receiver.url}/api/v1/tenants/acme/breaker",
            json={"action": "force_open"},
            headers=ADMIN,
            timeout=10,
        )
        assert_envelope(forced, 503)
        assert get(receiver, "/readyz").status_code == 503
        assert get(receiver, "/healthz").status_code == 200

        store.start()
        wait_for(lambda: get(receiver, "/readyz").status_code == 200, 20, "readiness")
        for tenant_id in ("acme", "globex"):
            retried = requests.post(
                url, json=notification(tenant_id, "firing", "A"), headers=WEBHOOK, timeout=10
            )
            assert retried.status_code == 200 and retried.json()["accepted"] == 1
            breaker = get(receiver, f"/api/v1/tenants/{tenant_id}").json()["breaker"]
            assert breaker["state"] == "open"
        listed = get(receiver, "/api/v1/incidents").json()
        assert listed["total"] == 1
        assert set(listed["items"][0]["tenants"]) == {"acme", "globex"}
    finally:
        stop.set()
        receiver.stop()
        store.stop()


def test_redis_full_answers_503_and_readyz_says_it_refuses_writes() -> None:
    """maxmemory reached (noeviction): the webhook answers a 503 envelope with
    Retry-After, /readyz 503 naming the refusal, the log says what happened; with room
    again, the retried delivery is applied."""
    store = RedisServer().start()
    receiver = Receiver({**TOKENS_ENV, "REDIS_URL": store.url}, workers=1).start()
    client = redis.Redis.from_url(store.url, decode_responses=True)
    url = f"{receiver.url}/webhook/alertmanager"
    try:
        assert requests.get(f"{receiver.url}/readyz", timeout=5).status_code == 200
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1")  # below what it holds: every write refused
        body = notification("acme", "firing", "A")
        refused = requests.post(url, json=body, headers=WEBHOOK, timeout=10)
        assert_envelope(refused, 503)
        assert int(refused.headers["Retry-After"]) > 0
        ready = requests.get(f"{receiver.url}/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["detail"]["redis"] == "refusing writes: OutOfMemoryError"
        client.config_set("maxmemory", "0")
        assert requests.post(url, json=body, headers=WEBHOOK, timeout=10).status_code == 200
        assert get(receiver, "/api/v1/tenants/acme").json()["breaker"]["state"] == "open"
        assert requests.get(f"{receiver.url}/readyz", timeout=5).status_code == 200
        log = Path(receiver.log.name).read_text()
        assert "store refusing writes: OutOfMemoryError" in log
        assert "unhandled error" not in log
    finally:
        receiver.stop()
        store.stop()


def test_a_worker_killed_between_commits_converges_on_the_retried_delivery(
    tmp_path: Path,
) -> None:
    """SIGKILL after the breakers of 200 tenants are committed and before the incident:
    the retried delivery is all duplicates, yet breakers, guard slots, the incident's
    isolations and timeline, and its notices end as if nothing had happened."""
    store = RedisServer().start()
    flag = tmp_path / "crash-once"
    flag.touch()
    env = {
        **TOKENS_ENV,
        "REDIS_URL": store.url,
        "GUARD_MAX_ISOLATED_PERCENT": "100",
        "CRASH_FLAG_FILE": str(flag),
    }
    receiver = Receiver(env, workers=1, app="tests.crashing:create_app()").start()
    tenants = [f"t{i:03d}" for i in range(200)]
    body = isolate_alert(tenants[0])
    body["alerts"] = [
        {**body["alerts"][0], "labels": {**body["alerts"][0]["labels"], "tenant_id": t},
         "fingerprint": f"fp-{t}"}
        for t in tenants
    ]  # fmt: skip
    url = f"{receiver.url}/webhook/alertmanager"
    try:
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(url, json=body, headers=WEBHOOK, timeout=30)
        assert not flag.exists()
        client = redis.Redis.from_url(store.url, decode_responses=True)
        assert client.zcard("br:{_incidents}:created") == 0  # the board never saw it
        retried = wait_for_ok(lambda: requests.post(url, json=body, headers=WEBHOOK, timeout=30))
        reply = retried.json()
        assert (reply["accepted"], reply["duplicates"], reply["transitions"]) == (0, 200, [])
        listed = get(receiver, "/api/v1/incidents").json()["items"]
        assert len(listed) == 1
        incident = get(receiver, f"/api/v1/incidents/{listed[0]['id']}").json()
        members = get(receiver, f"/api/v1/incidents/{listed[0]['id']}/tenants?per_page=500")
        assert {t["tenant_id"] for t in members.json()["items"]} == set(tenants)
        assert incident["tenants_total"] == len(tenants)
        assert set(incident["detection_latency_s"]) == set(tenants)
        opened = [
            e for e in incident["timeline"] if "taken from the committed breaker" in e["message"]
        ]
        assert len(opened) == 200
        assert client.smembers("br:{_global}:isolated") == set(tenants)
        states = {
            t: get(receiver, f"/api/v1/tenants/{t}").json()["breaker"]["state"] for t in tenants[:5]
        }
        assert set(states.values()) == {"open"}
    finally:
        receiver.stop()
        store.stop()


def wait_for_ok(post: Any, timeout_s: float = 30) -> requests.Response:
    """The first 200 of `post`, retried while gunicorn brings up a new worker."""
    found: list[requests.Response] = []

    def attempt() -> bool:
        try:
            response = post()
        except requests.exceptions.ConnectionError:
            return False
        found.append(response)
        return response.status_code == 200

    wait_for(attempt, timeout_s, "the retried delivery")
    return found[-1]
