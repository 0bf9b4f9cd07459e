"""The simulated platform: its counters, its gateway's obedience, its HTTP surface."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from receiver.simulator import Platform, Tenant, parse_tenants


@pytest.fixture
def platform() -> Iterator[Platform]:
    """Served on loopback, with a tick too slow to interfere with the test's own ticks."""
    server = Platform(parse_tenants("t1:gold:5,t2:silver:0.5"), tick_s=3600).start()
    yield server
    server.stop()


def test_parse_tenants() -> None:
    """id:tier:qps, comma separated; a bad id is refused."""
    assert parse_tenants("a:gold:5, b:bronze:0.2") == [
        Tenant("a", "gold", 5.0),
        Tenant("b", "bronze", 0.2),
    ]
    with pytest.raises(ValueError):
        parse_tenants("a b:gold:5")


def test_queries_and_errors_carry_fractions_across_ticks(platform: Platform) -> None:
    """0.5 query/s is one query every other second; 95% errors of 5/s is 19 in 20."""
    platform.control({"tenant_id": "t1", "error_ratio": 0.95})
    for _ in range(4):
        platform.tick(1.0)
    tenants = platform.state()["tenants"]
    assert (tenants["t1"]["queries"], tenants["t1"]["errors"]) == (20, 19)
    assert (tenants["t2"]["queries"], tenants["t2"]["errors"]) == (2, 0)


@pytest.mark.parametrize(
    ("state", "fail_open", "served"),
    [
        ("closed", True, 100),
        ("disabled", True, 100),
        ("open", True, 0),
        ("forced_open", True, 0),
        ("half_open", True, 10),
        ("unreachable", True, 100),
        ("unreachable", False, 0),
    ],
)
def test_gateway_serves_by_breaker_state(state: str, fail_open: bool, served: int) -> None:
    """The tick's queries are served, refused, or probed at the half-open share."""
    platform = Platform([Tenant("t1", "gold", 10.0)], fail_open=fail_open)
    platform.admission = lambda tenant_id: state  # type: ignore[method-assign]
    for _ in range(10):
        platform.tick(1.0)
    tenant = platform.state()["tenants"]["t1"]
    assert (tenant["queries"], tenant["rejected"], tenant["admission"]) == (
        served,
        100 - served,
        state,
    )


def test_unreachable_receiver_costs_one_call_per_tick() -> None:
    """Once the receiver fails to answer, the rest of the tick does not ask again."""
    platform = Platform(
        [Tenant("t1", "gold", 1.0), Tenant("t2", "gold", 1.0)], receiver_url="http://127.0.0.1:9"
    )
    calls: list[str] = []

    def down(tenant_id: str) -> str:
        calls.append(tenant_id)
        return "unreachable"

    platform.admission = down  # type: ignore[method-assign]
    platform.tick(1.0)
    assert calls == ["t1"]
    assert platform.state()["tenants"]["t2"]["queries"] == 1


def test_metrics_in_prometheus_text_format(platform: Platform) -> None:
    """Both counters exist from the start, with the tier in rag_tenant_info."""
    platform.control({"tenant_id": "t1", "error_ratio": 0.5})
    platform.tick(2.0)
    text = requests.get(f"{platform.url}/metrics", timeout=5).text
    assert "# TYPE rag_queries_total counter" in text
    assert 'rag_queries_total{tenant_id="t1"} 10' in text
    assert 'rag_query_errors_total{tenant_id="t1"} 5' in text
    assert 'rag_query_errors_total{tenant_id="t2"} 0' in text
    assert 'rag_tenant_info{tenant_id="t2",tier="silver"} 1' in text


def test_control_creates_changes_and_validates(platform: Platform) -> None:
    """POST /control takes any subset of fields; bad values are a 400."""
    url = f"{platform.url}/control"
    created = requests.post(url, json={"tenant_id": "t3", "qps": 2}, timeout=5)
    assert created.status_code == 200
    assert created.json()["qps"] == 2 and created.json()["tier"] == "bronze"
    requests.post(url, json={"tenant_id": "t3", "error_ratio": 0.25}, timeout=5)
    state = requests.get(f"{platform.url}/state", timeout=5).json()["tenants"]["t3"]
    assert (state["qps"], state["error_ratio"]) == (2, 0.25)
    for bad in (
        {"tenant_id": "t3", "error_ratio": 1.5},
        {"qps": 1},
        {"tenant_id": "t3", "qps": -1},
    ):
        assert requests.post(url, json=bad, timeout=5).status_code == 400, bad
    assert requests.post(url, data="[1]", timeout=5).status_code == 400


def _pool_platform(capacity_pool_s: float, seed: int | None = None) -> Platform:
    """t1: 8 cheap queries a second; t2: 20 at five times the cost, a fifth failing."""
    platform = Platform(
        parse_tenants("t1:gold:8:0.01,t2:silver:20:0.05"),
        capacity_pool_s=capacity_pool_s,
        seed=seed,
    )
    platform.control({"tenant_id": "t2", "error_ratio": 0.2})
    return platform


def _samples(text: str) -> dict[str, float]:
    """Every sample line of a Prometheus text exposition, by name and labels."""
    lines = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {series: float(value) for series, value in lines}


def _duration(tenant_id: str, suffix: str, le: str | None = None) -> str:
    bound = "" if le is None else f',le="{le}"'
    return f'rag_query_duration_seconds_{suffix}{{tenant_id="{tenant_id}"{bound}}}'


def test_parse_tenants_with_cost() -> None:
    """An optional fourth field is the query's cost in pool-seconds; 0.01 without it."""
    assert parse_tenants("a:gold:5:0.2,b:bronze:1") == [
        Tenant("a", "gold", 5.0, cost_s=0.2),
        Tenant("b", "bronze", 1.0, cost_s=0.01),
    ]
    assert parse_tenants("a:gold:5:0")[0].cost_s == 0


@pytest.mark.parametrize(
    "spec",
    ["a:gold:5:-1", "a:gold:5:x", "a:gold:5:nan", "a:gold:5:inf", "a:gold:5:1:2", "a:gold:-5"],
)
def test_parse_tenants_refuses_bad_numbers(spec: str) -> None:
    """qps and cost_s are finite numbers of at least 0, and there are at most four fields."""
    with pytest.raises(ValueError):
        parse_tenants(spec)


def test_under_capacity_only_own_errors_and_duration_is_cost() -> None:
    """Within capacity a query holds the pool for its cost and fails only on its own."""
    platform = _pool_platform(capacity_pool_s=2.25)
    platform.tick(1.0)
    state = platform.state()
    assert state["pool"]["load_pool_s"] == pytest.approx(8 * 0.01 + 20 * 0.05)
    assert state["pool"]["saturated"] is False
    t1, t2 = state["tenants"]["t1"], state["tenants"]["t2"]
    assert (t1["last_served"], t1["last_errors"]) == (8, 0)
    assert (t2["last_served"], t2["last_errors"]) == (20, 20 * 0.2)
    samples = _samples(platform.metrics())
    assert samples[_duration("t1", "sum")] == pytest.approx(8 * 0.01)
    assert samples[_duration("t2", "sum")] == pytest.approx(20 * 0.05)
    assert samples[_duration("t2", "count")] == 20
    assert (
        samples[_duration("t1", "bucket", "0.005")],
        samples[_duration("t1", "bucket", "0.01")],
    ) == (0, 8)
    assert (
        samples[_duration("t2", "bucket", "0.025")],
        samples[_duration("t2", "bucket", "0.05")],
    ) == (0, 20)


@pytest.mark.parametrize(
    ("change", "capacity_pool_s", "load_pool_s", "buckets"),
    [
        # t1's queries 100 times as expensive: 8 * 1.0 + 20 * 0.05 pool-seconds a second.
        ({"cost_s": 1.0}, 2.25, 8 * 1.0 + 20 * 0.05, {"t1": ("2.5", "5"), "t2": ("0.1", "0.25")}),
        # t1 surging 50-fold: 400 * 0.01 + 20 * 0.05 pool-seconds a second.
        (
            {"qps": 400},
            3.125,
            400 * 0.01 + 20 * 0.05,
            {"t1": ("0.01", "0.025"), "t2": ("0.05", "0.1")},
        ),
    ],
)
def test_one_culprit_saturates_the_pool_for_everyone(
    change: dict[str, float],
    capacity_pool_s: float,
    load_pool_s: float,
    buckets: dict[str, tuple[str, str]],
) -> None:
    """Over capacity every tenant's queries time out at 1 - capacity/L on top of their own
    errors, and every query takes L/capacity times its cost."""
    platform = _pool_platform(capacity_pool_s)
    platform.control({"tenant_id": "t1", **change})
    platform.tick(1.0)
    state = platform.state()
    assert state["pool"] == {
        "capacity_pool_s": capacity_pool_s,
        "load_pool_s": pytest.approx(load_pool_s),
        "saturated": True,
    }
    timeout_share = 1 - capacity_pool_s / load_pool_s
    stretch = load_pool_s / capacity_pool_s
    samples = _samples(platform.metrics())
    for tenant_id, (below, above) in buckets.items():
        tenant = state["tenants"][tenant_id]
        served = tenant["last_served"]
        assert served == tenant["qps"]
        failing = 1 - (1 - tenant["error_ratio"]) * (1 - timeout_share)
        assert tenant["last_errors"] == round(served * failing), tenant_id
        assert samples[_duration(tenant_id, "count")] == served
        assert samples[_duration(tenant_id, "sum")] == pytest.approx(
            served * tenant["cost_s"] * stretch
        )
        assert samples[_duration(tenant_id, "bucket", below)] == 0
        assert samples[_duration(tenant_id, "bucket", above)] == served
        assert samples[_duration(tenant_id, "bucket", "+Inf")] == served


def test_isolating_the_culprit_restores_everyone_on_the_next_tick() -> None:
    """With the culprit's breaker open, the others are back to their own errors and cost."""
    platform = _pool_platform(capacity_pool_s=2.25)
    platform.control({"tenant_id": "t1", "cost_s": 1.0})
    platform.tick(1.0)
    assert platform.state()["tenants"]["t2"]["last_errors"] == 20 * (1 - 0.8 * 2.25 / 9.0)
    platform.admission = lambda tenant_id: "open" if tenant_id == "t1" else "closed"  # type: ignore[method-assign]
    platform.tick(1.0)
    state = platform.state()
    assert state["pool"]["load_pool_s"] == pytest.approx(20 * 0.05)
    assert state["pool"]["saturated"] is False
    assert state["tenants"]["t1"]["last_served"] == 0
    assert (state["tenants"]["t2"]["last_served"], state["tenants"]["t2"]["last_errors"]) == (
        20,
        20 * 0.2,
    )
    samples = _samples(platform.metrics())
    # Only the second tick's 20 queries took no longer than their cost of 0.05s.
    assert samples[_duration("t2", "bucket", "0.05")] == 20
    assert samples[_duration("t2", "count")] == 40


def test_seeded_overload_failures_are_drawn_at_random() -> None:
    """With a seed the timeouts are drawn per query, near the share 1 - capacity/L."""
    platform = _pool_platform(capacity_pool_s=3.125, seed=7)
    platform.control({"tenant_id": "t1", "qps": 400})
    for _ in range(10):
        platform.tick(1.0)
    errors = platform.state()["tenants"]["t1"]["errors"]
    expected = 10 * 400 * (1 - 3.125 / 5.0)
    assert errors != expected and abs(errors - expected) < 150


def test_histogram_exists_at_zero_for_every_tenant_from_the_start() -> None:
    """rate() needs a first sample at 0, also for a tenant created later."""
    platform = _pool_platform(capacity_pool_s=1.0)
    platform.control({"tenant_id": "t3", "qps": 1})
    text = platform.metrics()
    assert "# TYPE rag_query_duration_seconds histogram" in text
    samples = _samples(text)
    for tenant_id in ("t1", "t2", "t3"):
        assert samples[_duration(tenant_id, "bucket", "+Inf")] == 0
        assert samples[_duration(tenant_id, "sum")] == 0
        assert samples[_duration(tenant_id, "count")] == 0


def test_no_pool_without_capacity() -> None:
    """Without a capacity no load slows or fails anyone, and no histogram is exported."""
    platform = Platform([Tenant("t1", "gold", 10.0, cost_s=100.0)])
    platform.tick(1.0)
    state = platform.state()
    assert state["pool"] == {"capacity_pool_s": None, "load_pool_s": 10 * 100.0, "saturated": False}
    assert state["tenants"]["t1"]["last_errors"] == 0
    assert "rag_query_duration_seconds" not in platform.metrics()


@pytest.mark.parametrize("cost_s", [-0.1, "0.1", True, float("inf")])
def test_control_validates_cost(cost_s: object) -> None:
    """cost_s is a finite number of at least 0."""
    platform = Platform([Tenant("t1", "gold", 1.0)])
    assert platform.control({"tenant_id": "t1", "cost_s": 0})["cost_s"] == 0
    with pytest.raises(ValueError, match="cost_s"):
        platform.control({"tenant_id": "t1", "cost_s": cost_s})


def test_control_sets_and_validates_capacity(platform: Platform) -> None:
    """POST /control resizes the pool without a tenant, null ends pool mode."""
    url = f"{platform.url}/control"
    resized = requests.post(url, json={"capacity_pool_s": 0.5}, timeout=5)
    assert resized.status_code == 200
    assert resized.json() == {"capacity_pool_s": 0.5, "load_pool_s": 0.0, "saturated": False}
    assert requests.get(f"{platform.url}/state", timeout=5).json()["pool"]["capacity_pool_s"] == 0.5
    assert (
        "rag_query_duration_seconds_count"
        in requests.get(f"{platform.url}/metrics", timeout=5).text
    )
    for bad in (
        {"capacity_pool_s": 0},
        {"capacity_pool_s": -1},
        {"capacity_pool_s": "1"},
        {"capacity_pool_s": True},
        {"capacity_pool_s": 1, "tenant_id": "t1"},
    ):
        assert requests.post(url, json=bad, timeout=5).status_code == 400, bad
    assert (
        requests.post(url, json={"capacity_pool_s": None}, timeout=5).json()["capacity_pool_s"]
        is None
    )
    assert (
        "rag_query_duration_seconds" not in requests.get(f"{platform.url}/metrics", timeout=5).text
    )
    with pytest.raises(ValueError):
        Platform([], capacity_pool_s=0)
