"""The seed's own story, live: a shared pool that one tenant's expensive or surging
queries exhaust, so that every tenant fails. Prometheus with the shipped rules,
Alertmanager with the shipped routes, the receiver under gunicorn on Redis, and the
simulated platform in shared-pool mode exporting pool time per tenant.

One stack serves the module and its tests run in order: a shared failure without a
culprit, then a culprit whose queries turn 100x as expensive, then one whose queries
surge 50x. Each test ends with the platform healthy. Deadlines are generous; the
speed is measured by `bench/detection.py --scenario noisy-neighbour`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from receiver.simulator import Platform, parse_tenants
from tests.conftest import READER
from tests.live import LiveStack
from tests.servers import Prometheus, Receiver
from tests.test_e2e import BREAKER_ENV, eventually, path

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Normal load: heavy 20 q/s x 10 ms = 0.2 pool-s/s, the eight others 5 q/s x 10 ms
# = 0.4; capacity 0.75. heavy at 100x (1 s a query) needs 20 pool-s/s, and even its
# 10% half-open probes (2 pool-s/s) fail everyone's queries at 69% again. surger at
# 50x sends 250 q/s (2.5 pool-s/s). Capacity 0.2 fails everyone alike (a database
# outage). Probation is longer than elsewhere: a saturating probe must be seen
# (30s window, for: 10s) before it ends.
TENANTS = "heavy:gold:20:0.01,surger:silver:5:0.01," + ",".join(
    f"v{i}:{tier}:5:0.01" for i, tier in enumerate(["gold", "silver", "bronze"] * 2 + ["silver"])
)
CAPACITY = 0.75
VICTIMS = [f"v{i}" for i in range(7)]
BASELINE = "tenant_id:rag_shared_load:baseline_share30m"


@dataclass
class Stack:
    receiver: Receiver
    platform: Platform
    prometheus: Prometheus

    def get(self, path: str, **params: Any) -> Any:
        reply = requests.get(
            f"{self.receiver.url}/api/v1/{path}", headers=READER, params=params, timeout=5
        )
        reply.raise_for_status()
        return reply.json()

    def breaker(self, tenant_id: str) -> dict[str, Any]:
        breaker: dict[str, Any] = self.get(f"tenants/{tenant_id}")["breaker"]
        return breaker

    def platform_incidents(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("incidents", scope="platform")["items"]
        return items

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        expr = f'ALERTS{{alertname="{alertname}", alertstate="firing"}}'
        return self.prometheus.query(expr)

    def victims_error_ratio(self) -> float:
        """What the other tenants experience now: errors over queries in the last tick."""
        tenants = self.platform.state()["tenants"]
        served = sum(tenants[t]["last_served"] for t in VICTIMS)
        errors = sum(tenants[t]["last_errors"] for t in VICTIMS)
        return errors / served if served else 0.0

    def untouched(self, *tenant_ids: str) -> None:
        """These tenants' breakers never left closed, and their gateway never refused."""
        for tenant_id in tenant_ids:
            breaker = self.breaker(tenant_id)
            assert (breaker["state"], breaker["transitions"]) == ("closed", []), tenant_id
            assert self.platform.state()["tenants"][tenant_id]["rejected"] == 0, tenant_id

    def quiet(self) -> None:
        """Wait until no shared-failure alert fires and the pool is not saturated."""
        eventually(
            lambda: (
                not any(
                    self.firing(name)
                    for name in (
                        "PlatformErrorRateHigh",
                        "TenantSharedFailure",
                        "TenantNoisyNeighbor",
                    )
                )
                and not self.platform.state()["pool"]["saturated"]
            ),
            180,
            "shared-failure alerts resolved",
        )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    tenants = parse_tenants(TENANTS)
    env = {**BREAKER_ENV, "BREAKER_HALF_OPEN_PROBATION_S": "90"}
    live = LiveStack.start(tenants, env, capacity_pool_s=CAPACITY)
    try:
        # Culprits are found against each tenant's baseline share: wait for it.
        eventually(
            lambda: len(live.prometheus.query(BASELINE)) == len(tenants), 180, "baseline shares"
        )
        yield Stack(live.receiver, live.platform, live.prometheus)
    finally:
        live.stop()


def test_a_shared_failure_without_a_culprit_isolates_nobody(stack: Stack) -> None:
    """Everyone failing alike: one platform P0, nobody isolated, everyone served after."""
    stack.platform.set_capacity(0.2)
    incident = eventually(
        lambda: (found := stack.platform_incidents()) and found[0]["priority"] == "P0" and found,
        180,
        "platform P0",
    )[0]
    assert incident["culprits"] == {}
    eventually(lambda: len(stack.get(f"incidents/{incident['id']}")["victims"]) == 9, 60, "victims")
    assert stack.firing("TenantNoisyNeighbor") == []
    stack.platform.set_capacity(CAPACITY)
    stack.quiet()
    assert len(stack.platform_incidents()) == 1
    stack.untouched("heavy", "surger", *VICTIMS)
    eventually(
        lambda: stack.get(f"incidents/{incident['id']}")["status"] == "resolved",
        120,
        "platform incident resolved",
    )


def test_a_tenant_whose_queries_turn_100x_as_expensive_is_isolated_alone(stack: Stack) -> None:
    """Only the culprit opens; the others recover; its saturating probes re-open it."""
    stack.platform.control({"tenant_id": "heavy", "cost_s": 1.0})
    eventually(lambda: stack.breaker("heavy")["state"] == "open", 180, "heavy isolated")
    eventually(lambda: stack.victims_error_ratio() < 0.1, 15, "victims recovered")
    stack.untouched("surger", *VICTIMS)
    incident = next(i for i in stack.platform_incidents() if "heavy" in i["culprits"])
    assert incident["culprits"]["heavy"]["share"] > 0.9
    assert incident["title"] == "noisy neighbour: heavy exhausting a shared resource"
    # Still 100x as expensive: its half-open probes saturate the pool again, before the
    # victims' alerts had resolved (the open timeout here is 30s).
    reopened = eventually(
        lambda: (b := stack.breaker("heavy"))["open_count"] >= 2 and b, 240, "heavy re-opened"
    )
    assert path(reopened)[:3] == [("closed", "open"), ("open", "half_open"), ("half_open", "open")]
    assert "probation" in reopened["transitions"][0]["reason"]
    stack.platform.control({"tenant_id": "heavy", "cost_s": 0.01})
    # Open twice as long now: the victims' alerts resolve while heavy is isolated.
    contained = eventually(
        lambda: (i := stack.get(f"incidents/{incident['id']}"))["contained_at"] and i,
        180,
        "contained",
    )
    assert set(contained["victims"]) >= set(VICTIMS)
    assert any("contained by isolating heavy" in e["message"] for e in contained["timeline"])
    stack.quiet()
    stack.untouched("surger", *VICTIMS)


def test_a_tenant_whose_queries_surge_50x_is_isolated_alone(stack: Stack) -> None:
    """Only the surging tenant opens, and the others recover once it is isolated."""
    stack.platform.control({"tenant_id": "surger", "qps": 250})
    eventually(lambda: stack.breaker("surger")["state"] == "open", 180, "surger isolated")
    eventually(lambda: stack.victims_error_ratio() < 0.1, 15, "victims recovered")
    stack.platform.control({"tenant_id": "surger", "qps": 5})
    stack.untouched(*VICTIMS)
    incident = next(i for i in stack.platform_incidents() if "surger" in i["culprits"])
    assert incident["culprits"]["surger"]["share"] > 0.5
    stack.quiet()
    stack.untouched(*VICTIMS)
