"""The gateway's admission client against a real receiver, a dead one, and one whose
Redis is down; cache and back-off behaviour with a stubbed transport."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from requests.adapters import BaseAdapter

from receiver.admission_client import AdmissionClient, Source
from tests.conftest import ADMIN, API_TOKEN, TOKENS_ENV, WEBHOOK, Clock, isolate_alert
from tests.servers import Receiver, RedisServer, free_port

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def receiver(redis_server: RedisServer) -> Iterator[Receiver]:
    server = Receiver({**TOKENS_ENV, "REDIS_URL": redis_server.url}, workers=2).start()
    yield server
    server.stop()


@pytest.fixture
def live(receiver: Receiver, real_redis: redis.Redis) -> Receiver:
    """The module's receiver on a flushed Redis."""
    return receiver


class Stub(BaseAdapter):
    """A transport that answers from a script and counts the requests it saw."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        super().__init__()
        self.answers = list(answers)
        self.calls = 0

    def send(self, request: requests.PreparedRequest, *_: Any, **__: Any) -> requests.Response:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(answer).encode()
        response.request = request
        return response

    def close(self) -> None:
        pass


def stubbed(stub: Stub, clock: Clock, fail_open: bool = True) -> AdmissionClient:
    client = AdmissionClient(
        "http://receiver.invalid", API_TOKEN, fail_open=fail_open, cache_ttl_s=1.0, clock=clock
    )
    client.session.mount("http://", stub)
    return client


HALF_OPEN = {"allow": False, "state": "half_open", "retry_after_s": 1}


def test_answers_come_from_the_receiver_then_the_cache(live: Receiver, clock: Clock) -> None:
    """A closed tenant is allowed; within the TTL the cached answer stands, then a fresh one."""
    with AdmissionClient(live.url, API_TOKEN, cache_ttl_s=5.0, clock=clock) as client:
        first = client.allow("acme")
        assert (first.allow, first.state, first.source) == (True, "closed", Source.RECEIVER)
        requests.post(
            f"{live.url}/api/v1/tenants/acme/breaker",
            json={"action": "force_open"},
            headers=ADMIN,
            timeout=5,
        ).raise_for_status()
        assert client.allow("acme").source is Source.CACHE
        clock.advance(5.0)
        fresh = client.allow("acme")
        assert (fresh.allow, fresh.state, fresh.source) == (False, "forced_open", Source.RECEIVER)


def test_isolated_tenant_is_refused_with_retry_after(live: Receiver) -> None:
    """After the isolation alert fires, the gateway is told to refuse and when to ask again."""
    requests.post(
        f"{live.url}/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK, timeout=5
    ).raise_for_status()
    with AdmissionClient(live.url, API_TOKEN) as client:
        decision = client.allow("acme")
        other = client.allow("globex")
    assert (decision.allow, decision.state) == (False, "open")
    assert decision.retry_after_s is not None and decision.retry_after_s > 0
    assert (other.allow, other.state) == (True, "closed")


@pytest.mark.parametrize("fail_open", [True, False])
def test_dead_receiver_answers_by_policy(fail_open: bool) -> None:
    """Nothing listening: every tenant gets the fallback answer, never an exception."""
    client = AdmissionClient(f"http://127.0.0.1:{free_port()}", API_TOKEN, fail_open=fail_open)
    with client:
        decision = client.allow("acme")
    assert (decision.allow, decision.state, decision.source) == (
        fail_open,
        "unknown",
        Source.FALLBACK,
    )


@pytest.mark.parametrize("fail_open", [True, False])
def test_receiver_with_redis_down_answers_by_policy(
    fail_open: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The receiver answers 503 when its Redis is gone; the client falls back."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    server = Receiver({**TOKENS_ENV, "REDIS_URL": dead_redis, "REDIS_TIMEOUT_S": "0.5"}).start()
    try:
        with caplog.at_level(logging.WARNING, "receiver.admission_client"):
            client = AdmissionClient(server.url, API_TOKEN, fail_open=fail_open)
            with client:
                decision = client.allow("acme")
    finally:
        server.stop()
    assert (decision.allow, decision.source) == (fail_open, Source.FALLBACK)
    assert "HTTP 503" in caplog.text


def test_hung_receiver_times_out_and_answers_by_policy(caplog: pytest.LogCaptureFixture) -> None:
    """A listener that never answers costs one timeout, then the fallback."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        with caplog.at_level(logging.WARNING, "receiver.admission_client"):
            client = AdmissionClient(url, API_TOKEN, timeout_s=0.2, fail_open=False)
            with client:
                decision = client.allow("acme")
    assert (decision.allow, decision.source) == (False, Source.FALLBACK)
    assert "Timeout" in caplog.text


def test_wrong_token_falls_back_and_logs_without_the_token(
    live: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A rejected token is a configuration error: logged loudly, the token never written."""
    wrong = "not-the-api-token-at-all-0001"
    with caplog.at_level(logging.DEBUG), AdmissionClient(live.url, wrong) as client:
        decision = client.allow("acme")
    assert decision.source is Source.FALLBACK
    assert any(r.levelno == logging.ERROR and "401" in r.getMessage() for r in caplog.records)
    assert wrong not in caplog.text and API_TOKEN not in caplog.text


def test_half_open_answers_are_asked_every_time(clock: Clock) -> None:
    """Each half-open request is a probe the receiver draws for; caching would skew it."""
    stub = Stub(HALF_OPEN, {"allow": True, "state": "half_open", "retry_after_s": None})
    with stubbed(stub, clock) as client:
        assert client.allow("acme").allow is False
        second = client.allow("acme")
    assert (second.allow, second.source, stub.calls) == (True, Source.RECEIVER, 2)


def test_last_answer_bridges_a_failure_within_the_ttl(clock: Clock) -> None:
    """A fresh last answer beats the blanket fallback when the receiver stops answering."""
    stub = Stub(HALF_OPEN, requests.ConnectionError("refused"))
    with stubbed(stub, clock) as client:
        client.allow("acme")
        bridged = client.allow("acme")
        clock.advance(1.0)
        later = client.allow("acme")
    assert (bridged.allow, bridged.state, bridged.source) == (False, "half_open", Source.CACHE)
    assert (later.allow, later.source) == (True, Source.FALLBACK)


def test_after_a_failure_it_stops_asking_for_a_ttl(clock: Clock) -> None:
    """A down receiver is asked once per TTL, not once per gateway request."""
    stub = Stub(requests.ConnectTimeout("slow"))
    with stubbed(stub, clock, fail_open=False) as client:
        decisions = [client.allow(f"t{i}") for i in range(20)]
        assert stub.calls == 1
        clock.advance(1.0)
        client.allow("t0")
    assert stub.calls == 2
    assert {(d.allow, d.source) for d in decisions} == {(False, Source.FALLBACK)}


@pytest.mark.parametrize(
    "answer",
    [{"allow": "yes", "state": "open"}, {"state": "open"}, ["allow"], "ok"],
)
def test_malformed_answer_is_a_failure(clock: Clock, answer: Any) -> None:
    """Anything but the documented shape is treated like an unreachable receiver."""
    stub = Stub(answer)
    with stubbed(stub, clock, fail_open=False) as client:
        decision = client.allow("acme")
    assert (decision.allow, decision.source) == (False, Source.FALLBACK)


@pytest.mark.parametrize("tenant_id", ["", "a/b", "x}:*", "../admin", "a" * 65, "ü"])
def test_invalid_tenant_ids_are_allowed_without_asking(clock: Clock, tenant_id: str) -> None:
    """The receiver never isolates an id it rejects, so there is nothing to ask."""
    stub = Stub(HALF_OPEN)
    with stubbed(stub, clock, fail_open=False) as client:
        decision = client.allow(tenant_id)
    assert (decision.allow, decision.source, stub.calls) == (True, Source.LOCAL, 0)
