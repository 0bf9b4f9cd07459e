"""The receiver as deployed: gunicorn with several workers on a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import ADMIN, READER, TOKENS_ENV, WEBHOOK, isolate_alert
from tests.servers import ROOT, Receiver, RedisServer, wait_for

pytestmark = pytest.mark.redis


@pytest.fixture
def receiver(redis_server: RedisServer, real_redis: redis.Redis) -> Iterator[Receiver]:
    env = {
        **TOKENS_ENV,
        "REDIS_URL": redis_server.url,
        "BREAKER_OPEN_TIMEOUT_S": "1",
        "BREAKER_HALF_OPEN_PROBATION_S": "1",
        "RECEIVER_SWEEP_INTERVAL_S": "0.2",
    }
    server = Receiver(env, workers=4).start()
    yield server
    server.stop()


def tenant(receiver: Receiver, tenant_id: str) -> dict:  # type: ignore[type-arg]
    response = requests.get(f"{receiver.url}/api/v1/tenants/{tenant_id}", headers=READER, timeout=5)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def test_four_workers_isolate_once_and_recover(receiver: Receiver) -> None:
    """50 concurrent deliveries -> one open; time -> half_open; resolved -> closed, all logged."""
    url = f"{receiver.url}/webhook/alertmanager"
    body = isolate_alert("acme", tier="gold")

    def deliver(_: int) -> dict:  # type: ignore[type-arg]
        response = requests.post(url, json=body, headers=WEBHOOK, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=50) as pool:
        replies = list(pool.map(deliver, range(50)))
    assert sum(r["accepted"] for r in replies) == 1
    assert sum(r["duplicates"] for r in replies) == 49
    assert sum(len(r["transitions"]) for r in replies) == 1
    assert tenant(receiver, "acme")["breaker"]["state"] == "open"

    resolved = requests.post(
        url, json=isolate_alert("acme", status="resolved"), headers=WEBHOOK, timeout=10
    )
    assert resolved.json()["transitions"] == []
    assert tenant(receiver, "acme")["breaker"]["state"] == "open"

    # The sweep, not a read, must record the transitions: wait on Redis itself.
    log_key = "br:{acme}:transitions"
    client = redis.Redis.from_url(receiver.env["REDIS_URL"], decode_responses=True)
    wait_for(lambda: client.llen(log_key) >= 3, 20, "sweep to close the breaker")
    time.sleep(0.5)
    body_now = tenant(receiver, "acme")
    assert body_now["tier"] == "gold"
    assert body_now["breaker"]["state"] == "closed"
    assert [(t["from"], t["to"]) for t in body_now["breaker"]["transitions"]] == [
        ("half_open", "closed"),
        ("open", "half_open"),
        ("closed", "open"),
    ]


def test_operator_and_admission_over_http(receiver: Receiver) -> None:
    """An admin forces a tenant open; the gateway's admission call is denied."""
    requests.post(
        f"{receiver.url}/api/v1/tenants/acme/breaker",
        json={"action": "force_open"},
        headers=ADMIN,
        timeout=5,
    ).raise_for_status()
    admission = requests.get(
        f"{receiver.url}/api/v1/tenants/acme/admission", headers=READER, timeout=5
    ).json()
    assert admission["allow"] is False and admission["state"] == "forced_open"
    ready = requests.get(f"{receiver.url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["detail"]["redis"] == "ok"


def test_workers_correlate_into_one_incident(
    redis_server: RedisServer, real_redis: redis.Redis, tmp_path: Path
) -> None:
    """Eight tenants failing at once, each posted to whichever worker: one incident, P0."""
    registry = tmp_path / "tenants.yml"
    registry.write_text(
        "tenants:\n" + "".join(f"  t{i:02d}: {{tier: silver}}\n" for i in range(50))
    )
    env = {**TOKENS_ENV, "REDIS_URL": redis_server.url, "TENANTS_FILE": str(registry)}
    server = Receiver(env, workers=4).start()
    try:
        url = f"{server.url}/webhook/alertmanager"
        bodies = [isolate_alert(f"t{i:02d}") for i in range(8)] * 3

        def deliver(body: dict) -> None:  # type: ignore[type-arg]
            response = requests.post(url, json=body, headers=WEBHOOK, timeout=10)
            assert response.status_code == 200, response.text

        with ThreadPoolExecutor(max_workers=24) as pool:
            list(pool.map(deliver, bodies))
        listed = requests.get(f"{server.url}/api/v1/incidents", headers=READER, timeout=5).json()
        assert listed["total"] == 1
        incident = listed["items"][0]
        assert len(incident["tenants"]) == 8 and incident["priority"] == "P1"
        full = requests.get(
            f"{server.url}/api/v1/incidents/{incident['id']}", headers=READER, timeout=5
        ).json()
        kinds = [e["kind"] for e in full["timeline"]]
        assert kinds.count("tenant_joined") == 8 and kinds.count("alert_firing") == 8
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL: expected one of redis://"),
        ({"PROMETHEUS_MULTIPROC_DIR": "/proc/blast-radius"}, "PROMETHEUS_MULTIPROC_DIR: cannot"),
        ({"BREAKER_OPEN_TIMEOUT_S": "soon"}, "BREAKER_OPEN_TIMEOUT_S: invalid value 'soon'"),
        ({"RECEIVER_API_TOKEN": "short"}, "RECEIVER_API_TOKEN must be at least"),
        ({"TENANTS_FILE": "/nonexistent.yml"}, "TENANTS_FILE: no such file"),
    ],
    ids=["redis-url", "metrics-dir", "number", "token", "registry"],
)
def test_a_bad_setting_stops_gunicorn_with_one_line(setting: dict[str, str], named: str) -> None:
    """Exit 1 with one line naming the variable, in the master, and no traceback."""
    env = {**os.environ, **TOKENS_ENV, **setting}
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "configuration error" in line]
    assert len(errors) == 1 and named in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_webhook_over_tls_with_a_self_signed_certificate(
    redis_server: RedisServer, real_redis: redis.Redis, tmp_path: Path
) -> None:
    """RECEIVER_TLS_CERT and _KEY: gunicorn serves HTTPS, a delivery is applied, and
    plain HTTP on the same port is not served."""
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    env = {
        **TOKENS_ENV,
        "REDIS_URL": redis_server.url,
        "RECEIVER_TLS_CERT": str(cert),
        "RECEIVER_TLS_KEY": str(key),
    }
    server = Receiver(env, workers=1, extra_args=("-c", "gunicorn.conf.py")).start()
    try:
        assert server.url.startswith("https://")
        reply = requests.post(
            f"{server.url}/webhook/alertmanager",
            json=isolate_alert("acme"),
            headers=WEBHOOK,
            verify=str(cert),
            timeout=10,
        )
        assert reply.status_code == 200 and reply.json()["accepted"] == 1
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(server.url.replace("https", "http") + "/healthz", timeout=5)
    finally:
        server.stop()
