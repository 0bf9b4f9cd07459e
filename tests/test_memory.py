"""Redis memory stays bounded: 1,000 tenants and 10,000 alert states through the webhook
twice, with the idempotency TTL and incident retention short enough to pass between
the rounds. The second round must not add what the first one did. The bound per
tenant is docs/operations.md's, measured by bench/memory.py at ten times this size,
with room to spare."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from bench.memory import Usage, deliver, payloads, registry, usage
from tests.conftest import READER, TOKENS_ENV, WEBHOOK, isolate_alert
from tests.servers import Receiver, RedisServer, wait_for

pytestmark = pytest.mark.redis

TENANTS = 1_000
STATES = 10
"""Per tenant and round: three rules, each firing and resolving (see bench.memory)."""
RULES = 3
ISOLATING_STATES = 6
BYTES_PER_TENANT = 16_000
"""docs/operations.md: 4-6 KB per tenant measured, about 16 KB with a full transition
log; the bound is the latter."""
GROW_TO_A_CAP = ("tenant transitions", "incidents outbox", "notifications")
ONE_PER_RULE = ("tenant alerts", "tenant resolved")
"""Alert records: one per rule at most; those of alerts resolved longer than the
idempotency TTL ago go, so their size depends on timing, not on the round."""
WITHIN_THE_TTL = ("tenant seen", "incidents seen")
"""Delivery keys of the last idempotency TTL: how many are left when memory is read
depends on timing; each is bounded on its own below."""
TRANSITION_LOG_CAP = 100
IDEMPOTENCY_TTL_S = 2.0


@pytest.fixture
def receiver(
    redis_server: RedisServer, real_redis: redis.Redis, tmp_path: Path
) -> Iterator[Receiver]:
    env = {
        **TOKENS_ENV,
        "REDIS_URL": redis_server.url,
        "TENANTS_FILE": str(registry(tmp_path / "tenants.yml", TENANTS)),
        "GUARD_MAX_ISOLATED_PERCENT": "100",
        "RECEIVER_IDEMPOTENCY_TTL_S": str(IDEMPOTENCY_TTL_S),
        "INCIDENT_RETENTION_S": "1",
        "BREAKER_OPEN_TIMEOUT_S": "1",
        "BREAKER_HALF_OPEN_PROBATION_S": "1",
        "RECEIVER_SWEEP_INTERVAL_S": "0.2",
    }
    server = Receiver(env, workers=2).start()
    yield server
    server.stop()


def settled(client: redis.Redis, receiver: Receiver) -> bool:
    """Every breaker closed again, every incident resolved and past retention."""
    reply = requests.get(
        f"{receiver.url}/api/v1/incidents", params={"status": "open"}, headers=READER, timeout=30
    )
    return (
        reply.json()["total"] == 0
        and not client.scard("br:{_global}:isolated")
        and not client.zcard("br:{_incidents}:created")
    )


def one_round(client: redis.Redis, receiver: Receiver, base: float) -> Usage:
    url = f"{receiver.url}/webhook/alertmanager"
    assert deliver(url, payloads(TENANTS, STATES, 1000, base)) == TENANTS * STATES
    wait_for(lambda: settled(client, receiver), 60, "breakers to close and incidents to go")
    return usage(client)


def per_key(client: redis.Redis, pattern: str, length: str) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(pattern, count=1000):
        getattr(pipe, length)(key)
    return [int(n) for n in pipe.execute()]


def steady(found: Usage) -> int:
    """Bytes of everything that must not grow from round to round: transition logs
    grow to their cap, the notification outbox drains on its own schedule, and alert
    records and delivery keys are bounded by the rules and the TTL (checked on their
    own)."""
    skip = GROW_TO_A_CAP + ONE_PER_RULE + WITHIN_THE_TTL
    return sum(v for k, v in found.bytes_by_kind.items() if k not in skip)


def test_two_rounds_use_no_more_than_one(receiver: Receiver, real_redis: redis.Redis) -> None:
    """Delivery keys expire, transition logs are capped, alert records are at most one
    per rule, resolved incidents are deleted: round two leaves memory where round one
    did."""
    baseline = usage(real_redis)
    base = time.time() - 7200
    first = one_round(real_redis, receiver, base)
    grown = first.used_memory - baseline.used_memory
    assert grown / TENANTS <= BYTES_PER_TENANT, grown / TENANTS

    time.sleep(IDEMPOTENCY_TTL_S)
    second = one_round(real_redis, receiver, base + 3600)
    grew = sorted(
        (second.bytes_by_kind.get(kind, 0) - first.bytes_by_kind.get(kind, 0), kind)
        for kind in {*first.bytes_by_kind, *second.bytes_by_kind}
    )
    assert steady(second) <= steady(first) * 1.1 + 64 * 1024, grew[-5:]

    assert second.keys_by_kind.get("incident documents", 0) == 0
    assert second.keys_by_kind.get("incident timelines", 0) == 0
    assert second.entries_by_kind["incidents seen"] <= TENANTS * ISOLATING_STATES
    for kind in ONE_PER_RULE:
        assert second.entries_by_kind.get(kind, 0) <= TENANTS * RULES, kind
    assert max(per_key(real_redis, "br:{t*}:seen", "zcard")) <= STATES
    assert max(per_key(real_redis, "br:{t*}:transitions", "llen")) <= TRANSITION_LOG_CAP
    for kind in ("tenant state", "tenant tenant", "tenant seen"):
        assert second.keys_by_kind[kind] == TENANTS, kind
    assert second.keys_by_kind.get("tenant alerts", 0) <= TENANTS


HOSTILE_ALERT_BOUND = 64 * 4096 + 64 * 16_384 + 64 * 1024 * 2 + 4096
"""docs/operations.md: 64 labels of 4 KiB and 64 annotations of 16 KiB, names of up
to 1,024 characters, and the record's own fields."""


def test_a_hostile_alert_is_stored_within_its_bound(
    redis_server: RedisServer, real_redis: redis.Redis
) -> None:
    """1 MB label values are refused and 9 MB of annotations cut, so one alert's record
    stays under the documented bound however large the payload that carried it."""
    env = {**TOKENS_ENV, "REDIS_URL": redis_server.url, "RECEIVER_MAX_BODY_BYTES": "20000000"}
    server = Receiver(env, workers=1).start()
    try:
        base = isolate_alert("acme")["alerts"][0]
        refused = {**base, "fingerprint": "huge-label"}
        refused["labels"] = {**base["labels"], "detail": "x" * 1_000_000}
        cut = {**base, "fingerprint": "huge-annotations"}
        cut["labels"] = {**base["labels"], "alertname": "Other"}
        cut["annotations"] = {f"a{i:02d}": "y" * 140_000 for i in range(64)}
        body = {**isolate_alert("acme"), "alerts": [refused, cut]}
        reply = requests.post(
            f"{server.url}/webhook/alertmanager", json=body, headers=WEBHOOK, timeout=30
        ).json()
        assert (reply["accepted"], [r["fingerprint"] for r in reply["rejected"]]) == (
            1,
            ["huge-label"],
        )
        stored = real_redis.memory_usage("br:{acme}:alerts")
        assert stored is not None and stored < HOSTILE_ALERT_BOUND
    finally:
        server.stop()
