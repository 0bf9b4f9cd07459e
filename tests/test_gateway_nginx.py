"""A real nginx with the shipped `deploy/nginx/blast-radius.conf` in front of a tiny
platform, asking a real receiver: isolation is enforced at the gateway."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import redis
import requests

from receiver.breaker import Breaker, State
from receiver.store import Change, ScopeStore
from receiver.store.commit import commit_scopes
from tests.conftest import ADMIN, API_TOKEN, TOKENS_ENV, WEBHOOK, isolate_alert
from tests.servers import Nginx, Receiver, RedisServer, Upstream

pytestmark = pytest.mark.redis

PROBE_PERCENT = 30
ENV = {**TOKENS_ENV, "BREAKER_HALF_OPEN_PROBE_PERCENT": str(PROBE_PERCENT)}


def address(receiver: Receiver) -> str:
    return receiver.url.removeprefix("http://")


@pytest.fixture(scope="module")
def platform() -> Iterator[Upstream]:
    upstream = Upstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def receiver(redis_server: RedisServer) -> Iterator[Receiver]:
    server = Receiver({**ENV, "REDIS_URL": redis_server.url}, workers=2).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(platform: Upstream, receiver: Receiver) -> Iterator[Nginx]:
    nginx = Nginx.gateway(platform.address, address(receiver), API_TOKEN).start()
    yield nginx
    nginx.stop()


@pytest.fixture
def live(gateway: Nginx, real_redis: redis.Redis) -> Nginx:
    """The module's gateway, its receiver on a flushed Redis. nginx keeps its 1 s auth
    cache across tests: each test uses tenants of its own."""
    return gateway


def through(nginx: Nginx, tenant: str) -> requests.Response:
    return requests.post(
        f"{nginx.url}/v1/orders", data=b"{}", headers={"X-Tenant-ID": tenant}, timeout=5
    )


def breaker_action(receiver: Receiver, tenant: str, action: str) -> None:
    requests.post(
        f"{receiver.url}/api/v1/tenants/{tenant}/breaker",
        json={"action": action},
        headers=ADMIN,
        timeout=5,
    ).raise_for_status()


def eventually(check: object, timeout_s: float) -> bool:
    """Whether `check()` became true within `timeout_s` (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_healthy_tenant_passes(live: Nginx, platform: Upstream) -> None:
    """A closed tenant's request reaches the platform."""
    before = platform.hits
    reply = through(live, "acme")
    assert (reply.status_code, reply.text) == (200, "ok")
    assert platform.hits == before + 1


def test_isolated_tenant_gets_503_with_retry_after(
    live: Nginx, receiver: Receiver, platform: Upstream
) -> None:
    """Its isolation alert fired: 503 and Retry-After, and the platform never sees it."""
    requests.post(
        f"{receiver.url}/webhook/alertmanager",
        json=isolate_alert("initech"),
        headers=WEBHOOK,
        timeout=5,
    ).raise_for_status()
    before = platform.hits
    reply = through(live, "initech")
    assert reply.status_code == 503
    assert int(reply.headers["Retry-After"]) > 0
    assert reply.headers["X-Blast-Radius-State"] == "open"
    assert platform.hits == before
    assert through(live, "globex").status_code == 200


def test_half_open_tenant_passes_about_the_probe_share(
    live: Nginx, real_redis: redis.Redis
) -> None:
    """Half open: about PROBE_PERCENT of requests pass (binomial, 4.5 sd either side)."""
    store = ScopeStore(real_redis, log_cap=100, seen_ttl_s=86400.0)
    half_open = Breaker(State.HALF_OPEN, opened_at=time.time(), half_open_at=time.time())
    now = time.time()
    assert commit_scopes(store, {"hooli": []}, lambda s: (Change("hooli", 0, half_open), 0), now)
    n = 300
    passed = sum(through(live, "hooli").status_code == 200 for _ in range(n))
    mean = n * PROBE_PERCENT / 100
    sd = (n * PROBE_PERCENT / 100 * (1 - PROBE_PERCENT / 100)) ** 0.5
    assert mean - 4.5 * sd <= passed <= mean + 4.5 * sd, passed


def test_forcing_a_breaker_shows_within_the_cache_period(live: Nginx, receiver: Receiver) -> None:
    """The 1 s auth cache: a tenant forced open is refused soon after, then let back."""
    assert through(live, "umbrella").status_code == 200
    breaker_action(receiver, "umbrella", "force_open")
    assert eventually(lambda: through(live, "umbrella").status_code == 503, 5.0)
    breaker_action(receiver, "umbrella", "force_close")
    assert eventually(lambda: through(live, "umbrella").status_code == 200, 5.0)


@pytest.mark.parametrize("fail_open", [True, False])
def test_receiver_stopped_fails_open_or_closed(
    redis_server: RedisServer, platform: Upstream, fail_open: bool
) -> None:
    """No receiver: the shipped config serves unchecked; the fail-closed change refuses."""
    server = Receiver({**ENV, "REDIS_URL": redis_server.url}, workers=1).start()
    nginx = Nginx.gateway(platform.address, address(server), API_TOKEN, fail_open).start()
    try:
        server.stop()
        reply = through(nginx, "never-cached")
    finally:
        nginx.stop()
    assert reply.status_code == (200 if fail_open else 503)


def would_deny(receiver: Receiver, tenant: str) -> float:
    text = requests.get(f"{receiver.url}/metrics", timeout=5).text
    found = re.search(rf'^blast_radius_would_deny_total{{tenant_id="{tenant}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_shadow_mode_passes_and_counts_then_enforce_without_restarting_nginx(
    redis_server: RedisServer, real_redis: redis.Redis, platform: Upstream
) -> None:
    """ENFORCEMENT=shadow: an isolated tenant passes and its would-deny counter rises;
    the receiver restarted to enforce on the same address, the same nginx refuses."""
    shadow = Receiver({**ENV, "REDIS_URL": redis_server.url, "ENFORCEMENT": "shadow"}, workers=1)
    shadow.start()
    nginx = Nginx.gateway(platform.address, address(shadow), API_TOKEN).start()
    enforcing = Receiver({**ENV, "REDIS_URL": redis_server.url}, workers=1)
    try:
        breaker_action(shadow, "acme", "force_open")
        replies = [through(nginx, "acme") for _ in range(5)]
        assert {r.status_code for r in replies} == {200}
        assert {r.text for r in replies} == {"ok"}
        assert would_deny(shadow, "acme") == 5
        shadow.stop()
        enforcing.port = shadow.port
        enforcing.start()
        assert eventually(lambda: through(nginx, "acme").status_code == 503, 5.0)
    finally:
        enforcing.stop()
        shadow.stop()
        nginx.stop()
