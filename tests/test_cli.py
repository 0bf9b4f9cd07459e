"""The `blast-radius` command: the demo story and the readiness check."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner

from receiver.cli import main
from tests.conftest import TOKENS_ENV
from tests.servers import Receiver, RedisServer

pytestmark = pytest.mark.redis

STRONG = {
    "RECEIVER_WEBHOOK_TOKEN": "w8Qe1vXo3kz9LpT2mN7cR4yB6dF0hJ5a",
    "RECEIVER_API_TOKEN": "Zt5Kq8Wn2Lx7Vb4Mc9Pd1Rf6Gh3Js0Ya",
    "RECEIVER_ADMIN_TOKEN": "Hy2Nc7Qm4Wt9Lb1Xk6Vp3Rd8Fj5Gs0Za",
}


@pytest.fixture
def trial_receiver(redis_server: RedisServer, real_redis: redis.Redis) -> Iterator[Receiver]:
    env = {
        **TOKENS_ENV,
        "REDIS_URL": redis_server.url,
        "BREAKER_OPEN_TIMEOUT_S": "1",
        "BREAKER_HALF_OPEN_PROBATION_S": "1",
        "RECEIVER_SWEEP_INTERVAL_S": "0.2",
    }
    server = Receiver(env, workers=2).start()
    yield server
    server.stop()


def test_demo_tells_the_whole_story(trial_receiver: Receiver) -> None:
    """Isolation, P2 -> P1, a noisy neighbour isolated alone, and recovery."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "receiver.cli",
            "demo",
            "--url",
            trial_receiver.url,
            "--heal-timeout",
            "60",
        ],
        env={**os.environ, **TOKENS_ENV},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "isolated: plat-01" in out
    assert "6 tenants, priority P1" in out and "4 tenants, priority P2" in out
    assert "20 tenants failing with the platform: 20 recorded" in out
    assert "held back: bronze-01, bronze-02, bronze-03" in out
    assert "isolated: gold-01" in out
    assert "noisy neighbour: gold-01 exhausting a shared resource" in out
    assert "contained by isolating gold-01: 20 victims recovered" in out
    assert "  0 tenants still isolated or on probation" in out
    assert "open" not in out.split("== 4. Everything heals")[1].split("incident ")[1]


def test_check_fails_on_a_trial_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Weak tokens and no Redis: not ready, exit code 1, each reason printed."""
    for name, value in TOKENS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(main, ["check", "--rules", "", "--alertmanager-config", ""])
    assert result.exit_code == 1
    assert "✗ tokens" in result.output and "✗ redis: REDIS_URL is unset" in result.output
    assert "✗ notifications: no channel configured" in result.output
    assert result.output.strip().endswith("not ready")


def test_check_sees_redis_persistence(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, real_redis: redis.Redis
) -> None:
    """Redis without AOF or RDB is not ready; with AOF it is; rule files pass promtool."""
    for name, value in STRONG.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("NOTIFY_ROUTES", "P0=slack;P1=slack;P2=slack")
    runner = CliRunner()
    result = runner.invoke(main, ["check", "--alertmanager-config", ""])
    assert "✗ redis: reachable but not persistent" in result.output
    assert "✓ tokens" in result.output and "✓ notifications: configured: slack" in result.output
    assert "✓ prometheus rules" in result.output
    real_redis.config_set("appendonly", "yes")
    try:
        result = runner.invoke(main, ["check", "--alertmanager-config", ""])
        assert "✓ redis: reachable, persistent (appendonly=yes" in result.output
        assert "✗ watchdog: never seen" in result.output and result.exit_code == 1
    finally:
        real_redis.config_set("appendonly", "no")
