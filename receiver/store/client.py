"""Our Redis client: decoded strings, bounded timeouts, one pool per process."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def connect(url: str | None, timeout_s: float) -> tuple[redis.Redis, bool]:
    """Our Redis client: decoded strings, bounded timeouts, one pool per process.

    Without a URL, an embedded in-memory Redis (fakeredis with Lua); the second
    value says whether that happened."""
    if url:
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=15,
            # Two quick retries ride out a failover; then the caller answers 503
            # and Alertmanager retries later, instead of a webhook hanging for seconds.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        )
        return client, False
    try:
        import fakeredis
    except ImportError:
        raise RuntimeError(
            "REDIS_URL is not set and the embedded store is not installed: "
            "set REDIS_URL or install blast-radius[embedded]"
        ) from None
    return fakeredis.FakeRedis(decode_responses=True), True


def binary_twin(client: redis.Redis) -> redis.Redis:
    """A client of the same server that returns bytes, as rq needs for its jobs."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["decode_responses"] = False
    twin_pool = pool.__class__(connection_class=pool.connection_class, **kwargs)
    return redis.Redis(connection_pool=twin_pool)
