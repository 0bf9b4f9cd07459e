from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from receiver import create_app
from receiver.config import BreakerSettings, Settings
from receiver.store import ScopeStore
from receiver.store.client import open_client
from tests.servers import RedisServer

pytest_plugins = ["tests.notify_fixtures", "tests.topology_fixtures"]


def with_registry(
    settings: Settings, directory: Path, tiers: Mapping[str, str], **changes: Any
) -> Settings:
    """`settings` reading a TENANTS_FILE, written in `directory`, of these tenants and
    tiers; with any other field `changes`."""
    path = directory / "tenants.yml"
    path.write_text(
        "tenants:\n" + "".join(f"  {t}: {{tier: {tier}}}\n" for t, tier in tiers.items())
    )
    return Settings(**{**settings.__dict__, "tenants_file": str(path), **changes})


DATA = Path(__file__).parent / "data"
WEBHOOK_TOKEN = "webhook-token-for-tests-0001"
API_TOKEN = "api-token-for-tests-00000001"
ADMIN_TOKEN = "admin-token-for-tests-000001"
ANY_ALERT_TIME_S = 100 * 365 * 86400.0
"""Tests replay alerts stamped at fixed dates (captures, T0 in 2027) against real
clocks: their receivers accept any alert time. tests/test_alert_times.py checks the
shipped window."""
TOKENS_ENV = {
    "RECEIVER_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    "RECEIVER_API_TOKEN": API_TOKEN,
    "RECEIVER_ADMIN_TOKEN": ADMIN_TOKEN,
    "RECEIVER_MAX_ALERT_AGE_S": str(ANY_ALERT_TIME_S),
    "RECEIVER_MAX_ALERT_FUTURE_S": str(ANY_ALERT_TIME_S),
}
T0 = 1_800_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def payload(name: str) -> dict[str, Any]:
    """A captured Alertmanager payload from tests/data."""
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def isolate_alert(
    tenant_id: str,
    status: str = "firing",
    starts_at: str = "2027-01-15T08:00:00.000Z",
    ends_at: str = "0001-01-01T00:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    """A TenantErrorRateHigh notification for one tenant, shaped like the captured one."""
    body = copy.deepcopy(payload("single-tenant-firing.json"))
    alert = body["alerts"][0]
    alert["labels"] = {
        "alertname": "TenantErrorRateHigh",
        "action": "isolate",
        "severity": "critical",
        "tenant_id": tenant_id,
        **labels,
    }
    alert["status"] = status
    alert["startsAt"] = starts_at
    resolved_at = "2027-01-15T08:05:00.000Z" if ends_at == "0001-01-01T00:00:00Z" else ends_at
    alert["endsAt"] = ends_at if status == "firing" else resolved_at
    alert["fingerprint"] = f"fp-{tenant_id}"
    body["status"] = status
    body["commonLabels"] = dict(alert["labels"])
    body["groupLabels"] = {"alertname": "TenantErrorRateHigh", "tenant_id": tenant_id}
    body["groupKey"] = f'{{}}:{{alertname="TenantErrorRateHigh", tenant_id="{tenant_id}"}}'
    return body


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def real_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of a real redis-server, flushed before and after the test."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture(
    params=[
        "fakeredis",
        pytest.param("redis-server", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
def redis_client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """Runs the test on fakeredis, a real redis-server, the primary of a Sentinel group
    and a 3-primary Redis Cluster; the last two through the receiver's own client."""
    if request.param == "fakeredis":
        client = fakeredis.FakeRedis(decode_responses=True)
        client.flushall()
        yield client
        client.flushall()
    elif request.param == "redis-server":
        yield request.getfixturevalue("real_redis")
    else:
        from tests.topology_fixtures import cluster_topology, sentinel_topology

        if request.param == "sentinel":
            topology = sentinel_topology(request.getfixturevalue("sentinel_group"))
        else:
            topology = cluster_topology(request.getfixturevalue("redis_cluster"))
        topology.flush()
        client = open_client(topology.url, 2.0)
        yield client
        client.close()
        topology.flush()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker_settings() -> BreakerSettings:
    return BreakerSettings()


@pytest.fixture
def settings(breaker_settings: BreakerSettings, request: pytest.FixtureRequest) -> Settings:
    on_cluster = getattr(request.node, "callspec", None) and (
        request.node.callspec.params.get("redis_client") == "cluster"
    )
    return Settings(
        webhook_token=WEBHOOK_TOKEN,
        api_token=API_TOKEN,
        admin_token=ADMIN_TOKEN,
        breaker=breaker_settings,
        max_body_bytes=256 * 1024,
        max_alert_age_s=ANY_ALERT_TIME_S,
        max_alert_future_s=ANY_ALERT_TIME_S,
        # rq cannot run on a cluster: its queue goes to the plain server, as deployed.
        notify_redis_url=request.getfixturevalue("redis_server").url if on_cluster else None,
    )


@pytest.fixture
def store(redis_client: redis.Redis, settings: Settings) -> ScopeStore:
    return ScopeStore(
        redis_client,
        log_cap=settings.breaker.transition_log_cap,
        seen_ttl_s=settings.idempotency_ttl_s,
    )


@pytest.fixture
def app(redis_client: redis.Redis, settings: Settings, clock: Clock) -> Flask:
    return create_app(
        {"SETTINGS": settings, "REDIS_CLIENT": redis_client, "CLOCK": clock, "SWEEPER": False}
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


WEBHOOK = auth(WEBHOOK_TOKEN)
READER = auth(API_TOKEN)
ADMIN = auth(ADMIN_TOKEN)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver on loopback, on a free port."""
    return ("127.0.0.1", 0)
