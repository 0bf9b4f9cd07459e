"""The receiver's own Redis clients on real servers: scripts that a server lost come
back, and REDIS_MIN_REPLICAS holds an acknowledgement until a replica has the writes."""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis
from flask.testing import FlaskClient
from redis.connection import HiredisRespSerializer

from receiver import create_app
from receiver.config import Settings
from receiver.store import keys as k
from receiver.store.client import _Packer, open_client, primaries
from tests.conftest import READER, WEBHOOK, Clock, isolate_alert
from tests.servers import RedisServer
from tests.topologies import SentinelGroup

real = pytest.mark.parametrize(
    "redis_client", ["redis-server", "sentinel", "cluster"], indirect=True
)


def app_for(client: redis.Redis, settings: Settings, clock: Clock) -> FlaskClient:
    config = {"SETTINGS": settings, "REDIS_CLIENT": client, "CLOCK": clock, "SWEEPER": False}
    return create_app(config).test_client()


@real
def test_a_pipeline_reloads_a_lost_script_and_runs_the_rest_once(
    redis_client: redis.Redis,
) -> None:
    """After SCRIPT FLUSH (a promoted replica, a new cluster node) the script calls of
    a pipeline are loaded and re-run; the commands beside them ran once."""
    script = redis_client.register_script("return redis.call('INCR', KEYS[1])")
    assert script(keys=["br:{t1}:n"]) == 1
    for server in primaries(redis_client):
        server.script_flush()
    pipe = redis_client.pipeline(transaction=False)
    pipe.incr("br:{t2}:n")
    script(keys=["br:{t1}:n"], client=pipe)
    pipe.evalsha(script.sha, 1, "br:{t3}:n")
    assert pipe.execute() == [1, 2, 1]
    assert redis_client.get("br:{t2}:n") == "1"


@real
def test_a_webhook_after_the_scripts_were_flushed_still_commits(
    redis_client: redis.Redis, settings: Settings, clock: Clock
) -> None:
    api = app_for(redis_client, settings, clock)
    first = api.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
    assert first.status_code == 200
    for server in primaries(redis_client):
        server.script_flush()
    second = api.post("/webhook/alertmanager", json=isolate_alert("globex"), headers=WEBHOOK)
    assert second.status_code == 200
    feed = api.get("/api/v1/admission", headers=READER).get_json()
    assert {t["tenant_id"] for t in feed["tenants"]} == {"acme"}  # the guard's cap holds globex
    tenant = api.get("/api/v1/tenants/globex", headers=READER).get_json()
    assert [t["to"] for t in tenant["breaker"]["transitions"]] == ["open"]


@pytest.mark.redis
def test_min_replicas_acknowledges_once_the_replica_has_the_writes(
    sentinel_group: SentinelGroup, settings: Settings, clock: Clock
) -> None:
    sentinel_group.flush()
    client = open_client(sentinel_group.url, 2.0)
    api = app_for(client, replace(settings, redis_min_replicas=1), clock)
    answer = api.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
    assert answer.status_code == 200
    replica = sentinel_group.replica_client()
    assert replica.hget(k.scope_key("acme", "state"), "state") == "open"
    client.close()
    sentinel_group.flush()


@pytest.mark.redis
def test_min_replicas_without_a_replica_answers_503_and_keeps_the_delivery(
    redis_server: RedisServer, real_redis: redis.Redis, settings: Settings, clock: Clock
) -> None:
    """No replica acknowledges: 503, so Alertmanager retries; the retry changes nothing
    twice."""
    strict = replace(settings, redis_min_replicas=1, redis_timeout_s=0.2)
    api = app_for(open_client(redis_server.url, 2.0), strict, clock)
    for _ in range(2):
        answer = api.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
        assert answer.status_code == 503
        assert answer.get_json()["message"] == "store unavailable; retry later"
    transitions = real_redis.lrange(k.scope_key("acme", "transitions"), 0, -1)
    assert len(transitions) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "k", 1.5),
        ("SET", "k", -3),
        ("CLIENT SETNAME", "x"),
        (b"GET", b"k"),
        (b"CLIENT LIST",),
        ("SET", "k", "é"),
        ("SET", "k", memoryview(b"ab")),
        ("SET", "k", bytearray(b"ab")),
    ],
)
def test_our_packer_packs_as_redis_pys(args: tuple[object, ...]) -> None:
    assert _Packer().pack(*args) == HiredisRespSerializer().pack(*args)


@pytest.mark.parametrize("bad", [None, object(), [1]])
def test_our_packer_refuses_what_redis_py_refuses(bad: object) -> None:
    with pytest.raises(redis.DataError):
        HiredisRespSerializer().pack("SET", "k", bad)
    with pytest.raises(redis.DataError):
        _Packer().pack("SET", "k", bad)
