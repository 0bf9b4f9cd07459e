"""The whole pipeline, live: the simulated platform's counters, Prometheus with the
shipped rules, Alertmanager with the shipped routes, the receiver under gunicorn on
Redis, and the platform's gateway obeying the receiver's admission answers.

One stack serves the module. Two tenants start failing as soon as it is up; the tests
then watch what follows. Deadlines are generous: detection speed is measured by
`bench/detection.py`, not asserted here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import requests

from receiver.simulator import Platform, parse_tenants
from tests.conftest import READER
from tests.live import LiveStack
from tests.servers import Prometheus, Receiver

pytestmark = pytest.mark.e2e

T = TypeVar("T")

# failing: 95% errors from the start, healed once isolated. stuck: 95% errors for
# good, at 30 queries/s so its 10% half-open probes (3/s) clear the rule's 1 query/s
# minimum. degraded: 30% errors, under the 50% threshold. quiet: 50% errors at
# 0.2 queries/s, under the minimum volume. Ten registered tenants let the
# blast-radius guard (20% by default) isolate two at once.
TENANTS = ",".join(
    ["failing:gold:5", "stuck:gold:30", "degraded:gold:5", "quiet:bronze:0.2"]
    + [f"healthy-{i}:{tier}:5" for i, tier in enumerate(["silver", "bronze"] * 3)]
)
ERROR_RATIOS = {"failing": 0.95, "stuck": 0.95, "degraded": 0.3, "quiet": 0.5}
NEVER_ISOLATED = ("degraded", "quiet", *(f"healthy-{i}" for i in range(6)))
QUIET_MAX_RATIO = (
    "max_over_time("
    'tenant_id:rag_query_errors_per_rag_queries:ratio_rate30s{tenant_id="quiet"}[10m])'
)
# Open timeout + probation (90s) must outlast the ~75s an isolated tenant's alert
# takes to resolve (window, keep_firing_for, group_interval), or a healed tenant is
# still "firing" when probation ends.
BREAKER_ENV = {
    "BREAKER_OPEN_TIMEOUT_S": "30",
    "BREAKER_HALF_OPEN_PROBATION_S": "60",
    "RECEIVER_SWEEP_INTERVAL_S": "1",
}


@dataclass
class Stack:
    receiver: Receiver
    platform: Platform
    prometheus: Prometheus

    def breaker(self, tenant_id: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.receiver.url}/api/v1/tenants/{tenant_id}", headers=READER, timeout=5
        )
        response.raise_for_status()
        breaker: dict[str, Any] = response.json()["breaker"]
        return breaker


def eventually(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """The first truthy result of `check`, polled every half second."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s}s")


def path(breaker: dict[str, Any]) -> list[tuple[str, str]]:
    """The breaker's transitions, oldest first."""
    return [(t["from"], t["to"]) for t in reversed(breaker["transitions"])]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    live = LiveStack.start(parse_tenants(TENANTS), BREAKER_ENV)
    try:
        for tenant_id, ratio in ERROR_RATIOS.items():
            live.platform.control({"tenant_id": tenant_id, "error_ratio": ratio})
        yield Stack(live.receiver, live.platform, live.prometheus)
    finally:
        live.stop()


def test_failing_tenant_is_isolated_alone(stack: Stack) -> None:
    """95% errors open that tenant's breaker and its gateway stops serving it; others stay."""
    eventually(lambda: stack.breaker("failing")["state"] == "open", 180, "failing isolated")
    for tenant_id in NEVER_ISOLATED:
        assert stack.breaker(tenant_id)["state"] == "closed", tenant_id
    eventually(
        lambda: stack.platform.state()["tenants"]["failing"]["admission"] == "open",
        10,
        "gateway sees the breaker open",
    )
    served = stack.platform.state()["tenants"]["failing"]["queries"]
    time.sleep(3)
    assert stack.platform.state()["tenants"]["failing"]["queries"] == served


def test_healed_tenant_goes_half_open_then_closed(stack: Stack) -> None:
    """Once healed, the isolated tenant is probed half open and then closed."""
    eventually(lambda: stack.breaker("failing")["state"] == "open", 180, "failing isolated")
    stack.platform.control({"tenant_id": "failing", "error_ratio": 0.0})
    eventually(lambda: stack.breaker("failing")["state"] == "half_open", 180, "half open")
    eventually(
        lambda: stack.platform.state()["tenants"]["failing"]["admission"] == "half_open",
        10,
        "gateway probing",
    )
    closed = eventually(
        lambda: (b := stack.breaker("failing"))["state"] == "closed" and b, 240, "closed"
    )
    assert path(closed)[0] == ("closed", "open")
    assert path(closed)[-2:] == [("open", "half_open"), ("half_open", "closed")]
    assert closed["transitions"][0]["reason"] == "probation passed with isolation alert resolved"


def test_tenant_still_failing_under_probes_is_isolated_again(stack: Stack) -> None:
    """Half-open probes of a tenant that still fails keep its alert firing: back to open."""
    reopened = eventually(
        lambda: (b := stack.breaker("stuck"))["open_count"] >= 2 and b, 300, "stuck re-isolated"
    )
    assert reopened["state"] == "open"
    assert path(reopened)[:3] == [("closed", "open"), ("open", "half_open"), ("half_open", "open")]


def test_tenants_under_the_thresholds_are_never_isolated(stack: Stack) -> None:
    """Healthy, 30%-failing and quiet 50%-failing tenants never trip during the whole run."""
    quiet_ratio = eventually(
        lambda: stack.prometheus.query(QUIET_MAX_RATIO),
        120,
        "quiet tenant's error ratio recorded",
    )
    assert float(quiet_ratio[0]["value"][1]) >= 0.5  # type: ignore[index]
    for tenant_id in NEVER_ISOLATED:
        breaker = stack.breaker(tenant_id)
        assert breaker["state"] == "closed", tenant_id
        assert breaker["transitions"] == [], tenant_id
        assert stack.platform.state()["tenants"][tenant_id]["rejected"] == 0, tenant_id


def test_watchdog_reaches_the_receiver(stack: Stack) -> None:
    """The always-firing Watchdog travels Prometheus -> Alertmanager -> receiver."""

    def last_seen() -> float | None:
        ready = requests.get(f"{stack.receiver.url}/readyz", timeout=5).json()
        seen: float | None = ready["detail"]["watchdog_last_seen_at"]
        return seen

    assert eventually(last_seen, 120, "watchdog seen") > 0
