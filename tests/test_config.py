"""Settings from the environment: defaults, parsing, and one-line failures."""

from __future__ import annotations

import pytest

from receiver.config import ConfigError, Enforcement, load_settings
from tests.conftest import TOKENS_ENV


def test_defaults() -> None:
    """With only tokens set, the documented defaults apply."""
    settings = load_settings(TOKENS_ENV)
    assert settings.redis_url is None
    assert settings.breaker.open_timeout_s == 60
    assert settings.breaker.max_open_timeout_s == 900
    assert settings.breaker.half_open_probe_percent == 10
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.tier_hourly_cost["platinum"] == 150_000


def test_values_are_parsed() -> None:
    """Numbers, percentages and tier costs are read with their types."""
    env = {
        **TOKENS_ENV,
        "BREAKER_OPEN_TIMEOUT_S": "5",
        "BREAKER_HALF_OPEN_PROBE_PERCENT": "25",
        "TIER_HOURLY_COST": "gold=1000, bronze=1",
        "REDIS_URL": "redis://h:1/0",
    }
    settings = load_settings(env)
    assert settings.breaker.open_timeout_s == 5.0
    assert settings.breaker.half_open_probe_percent == 25.0
    assert settings.tier_hourly_cost["gold"] == 1000 and settings.tier_hourly_cost["bronze"] == 1
    assert settings.redis_url == "redis://h:1/0"


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"RECEIVER_WEBHOOK_TOKEN": ""}, "RECEIVER_WEBHOOK_TOKEN"),
        ({"RECEIVER_API_TOKEN": "short"}, "RECEIVER_API_TOKEN"),
        ({"BREAKER_OPEN_TIMEOUT_S": "soon"}, "BREAKER_OPEN_TIMEOUT_S"),
        ({"BREAKER_FAILURE_THRESHOLD": "0"}, "BREAKER_FAILURE_THRESHOLD"),
        ({"BREAKER_HALF_OPEN_PROBE_PERCENT": "150"}, "BREAKER_HALF_OPEN_PROBE_PERCENT"),
        ({"BREAKER_MAX_OPEN_TIMEOUT_S": "10"}, "BREAKER_MAX_OPEN_TIMEOUT_S"),
        ({"TIER_HOURLY_COST": "diamond=5"}, "TIER_HOURLY_COST"),
        ({"TENANTS_FILE": "/nonexistent/tenants.yml"}, "TENANTS_FILE"),
    ],
)
def test_invalid_values_name_the_variable(change: dict[str, str], name: str) -> None:
    """A wrong value fails with a one-line message that starts with the variable."""
    with pytest.raises(ConfigError) as info:
        load_settings({**TOKENS_ENV, **change})
    message = str(info.value)
    assert name in message and "\n" not in message


def test_gate_and_enforcement_settings() -> None:
    """Defaults: X-Tenant-ID, 429, no tenant allowed, fail open, enforce; each parsed."""
    default = load_settings(TOKENS_ENV)
    assert (default.gate.tenant_header, default.gate.deny_status) == ("X-Tenant-ID", 429)
    assert (default.gate.no_tenant_allow, default.gate.fail_open) == (True, True)
    assert (default.gate.tenant_pattern, default.enforcement) == (None, Enforcement.ENFORCE)
    env = {
        **TOKENS_ENV,
        "GATE_TENANT_HEADER": "X-Scope-OrgID",
        "GATE_TENANT_PATTERN": "^/t/(?P<tenant>[^/]+)/",
        "GATE_DENY_STATUS": "403",
        "GATE_NO_TENANT": "deny",
        "GATE_FAIL_OPEN": "false",
        "ENFORCEMENT": "Shadow",
    }
    settings = load_settings(env)
    assert settings.gate.tenant_header == "X-Scope-OrgID"
    assert settings.gate.tenant_pattern is not None
    assert (settings.gate.deny_status, settings.gate.no_tenant_allow) == (403, False)
    assert (settings.gate.fail_open, settings.enforcement) == (False, Enforcement.SHADOW)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATE_DENY_STATUS", "503"),
        ("GATE_DENY_STATUS", "200"),
        ("GATE_TENANT_PATTERN", "^/t/[^/]+/"),
        ("GATE_TENANT_PATTERN", "(unclosed"),
        ("GATE_NO_TENANT", "maybe"),
        ("GATE_FAIL_OPEN", "sometimes"),
        ("ENFORCEMENT", "audit"),
    ],
)
def test_invalid_gate_settings_name_the_variable(name: str, value: str) -> None:
    """A 5xx deny, a pattern without a group, an unknown mode: one line naming it."""
    with pytest.raises(ConfigError, match=name):
        load_settings({**TOKENS_ENV, name: value})
