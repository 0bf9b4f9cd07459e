"""The benchmarks' floor app: it answers a webhook with the count of its alerts, and
with `round_trip` asks redis-server once per post, and only then."""

from __future__ import annotations

import pytest
import redis

from bench.floor_app import create_app
from tests.conftest import isolate_alert
from tests.servers import RedisServer


def _zmscore_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_zmscore", {}).get("calls", 0))


@pytest.mark.parametrize("round_trip, asked", [(False, 0), (True, 3)])
def test_the_floor_asks_redis_once_per_post_only_with_round_trip(
    redis_server: RedisServer,
    real_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    round_trip: bool,
    asked: int,
) -> None:
    """Three posts: three `ZMSCORE`s with `round_trip`, none without."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    api = create_app(round_trip=round_trip).test_client()
    before = _zmscore_calls(real_redis)
    for tenant in ("a", "b", "c"):
        reply = api.post("/webhook/alertmanager", json=isolate_alert(tenant))
        assert reply.status_code == 200 and reply.json == {"status": "ok", "accepted": 1}
    assert _zmscore_calls(real_redis) - before == asked
