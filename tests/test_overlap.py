"""Pipelines sent while the next is built, answered part by part. On a real
redis-server: a part held up in Redis is what shows the order."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from receiver.store.overlap import execute_overlapped

pytestmark = pytest.mark.redis


def _set(name: str) -> Any:
    return lambda pipe: pipe.set(name, "1")


def test_each_part_is_given_as_soon_as_it_is_answered_in_order(real_redis: redis.Redis) -> None:
    """The first part's replies come while the second still waits in Redis (a
    blocking pop on a list nobody has pushed to yet)."""

    def held(pipe: Any) -> None:
        pipe.blpop(["gate"], timeout=10)
        pipe.set("second", "1")

    answered = execute_overlapped(real_redis, [_set("first"), held])
    assert next(answered) == [True]
    assert real_redis.get("second") is None
    real_redis.rpush("gate", "open")
    assert next(answered) == [("gate", "open"), True]
    assert list(answered) == []


def test_a_failing_part_is_raised_once_every_part_sent_is_answered(
    real_redis: redis.Redis,
) -> None:
    real_redis.set("text", "not a number")

    def failing(pipe: Any) -> None:
        pipe.incr("text")

    answered = execute_overlapped(real_redis, [_set("first"), failing, _set("third")])
    assert next(answered) == [True]
    with pytest.raises(redis.ResponseError):
        next(answered)
    assert real_redis.get("third") == "1"


def test_a_failure_building_a_part_is_raised_after_the_parts_sent(
    real_redis: redis.Redis,
) -> None:
    class Broken(Exception):
        pass

    def parts() -> Any:
        yield _set("first")
        raise Broken

    with pytest.raises(Broken):
        next(execute_overlapped(real_redis, parts()))
    assert real_redis.get("first") == "1"
