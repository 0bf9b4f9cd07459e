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
