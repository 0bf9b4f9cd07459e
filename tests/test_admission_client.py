"""The gateway's admission client against a real receiver, a dead one, and one whose
Redis is down; refresh, draw and fallback behaviour with a stubbed transport."""

from __future__ import annotations

import json
import logging
import random
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


Answer = tuple[int, Any] | Exception


class Stub(BaseAdapter):
    """A transport that answers (status, body) from a script, and keeps the requests."""

    def __init__(self, *answers: Answer) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[requests.PreparedRequest] = []

    @property
    def calls(self) -> int:
        return len(self.sent)

    def send(self, request: requests.PreparedRequest, *_: Any, **__: Any) -> requests.Response:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.sent.append(request)
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code, body = answer
        response._content = b"" if body is None else json.dumps(body).encode()
        response.headers["ETag"] = f'"v{self.calls}"'
        response.request = request
        return response

    def close(self) -> None:
        pass


def stubbed(stub: Stub, clock: Clock, fail_open: bool = True, **kwargs: Any) -> AdmissionClient:
    client = AdmissionClient(
        "http://receiver.invalid", API_TOKEN, fail_open=fail_open, clock=clock, **kwargs
    )
    client.session.mount("http://", stub)
    return client


def feed(*entries: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"version": "1-0", "enforcement": "enforce", "tenants": list(entries)}


def listed(
    tenant: str, state: str, allowed: float, retry: int | None = 30, **more: Any
) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "state": state,
        "allowed_percent": allowed,
        "retry_after_s": retry,
        **more,
    }


def force_open(url: str, tenant: str) -> None:
    requests.post(
        f"{url}/api/v1/tenants/{tenant}/breaker",
        json={"action": "force_open"},
        headers=ADMIN,
        timeout=5,
    ).raise_for_status()


def test_decisions_come_from_the_feed_refreshed_per_interval(live: Receiver, clock: Clock) -> None:
    """Closed tenants are served; a forced breaker shows at the next refresh, not before."""
    with AdmissionClient(live.url, API_TOKEN, refresh_s=5.0, clock=clock) as client:
        first = client.allow("acme")
        assert (first.allow, first.state, first.source) == (True, "closed", Source.FEED)
        force_open(live.url, "acme")
        assert client.allow("acme").allow is True
        clock.advance(5.0)
        fresh = client.allow("acme")
    assert (fresh.allow, fresh.state, fresh.source) == (False, "forced_open", Source.FEED)


def test_isolated_tenant_is_refused_with_retry_after(live: Receiver) -> None:
    """After the isolation alert fires, the gateway refuses and knows when to ask again."""
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
    """Nothing listening and no list yet: the fallback answer, never an exception."""
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


def test_one_conditional_request_per_interval_for_every_tenant(clock: Clock) -> None:
    """1,000 tenants decided, one request; the next interval sends the ETag and a 304
    keeps the list."""
    stub = Stub(feed(listed("acme", "open", 0.0)), (304, None))
    with stubbed(stub, clock) as client:
        decisions = [client.allow(f"t{i}") for i in range(1000)]
        assert stub.calls == 1
        clock.advance(1.0)
        kept = client.allow("acme")
    assert stub.calls == 2
    assert stub.sent[1].headers["If-None-Match"] == '"v1"'
    assert {d.allow for d in decisions} == {True}
    assert (kept.allow, kept.state, kept.source) == (False, "open", Source.FEED)


def test_retry_after_counts_down_on_the_clients_clock(clock: Clock) -> None:
    """retry_after_s is from when the list came, however often it is asked."""
    stub = Stub(feed(listed("acme", "open", 0.0, retry=30)), (304, None))
    with stubbed(stub, clock) as client:
        assert client.allow("acme").retry_after_s == 30
        clock.advance(10.0)
        assert client.allow("acme").retry_after_s == 20


def test_half_open_share_is_a_local_draw(clock: Clock) -> None:
    """A 10% probe share passes about 10% of 2,000 requests (binomial, 4.5 sd)."""
    stub = Stub(feed(listed("acme", "half_open", 10.0, retry=1)))
    draws = random.Random(7)
    with stubbed(stub, clock, draw=draws.random) as client:
        passed = sum(client.allow("acme").allow for _ in range(2000))
    sd = (2000 * 0.1 * 0.9) ** 0.5
    assert 200 - 4.5 * sd <= passed <= 200 + 4.5 * sd
    assert stub.calls == 1


def test_last_good_list_bridges_a_failure_then_falls_back(clock: Clock) -> None:
    """The receiver stops answering: the last list stands for max_stale_s, then policy."""
    stub = Stub(feed(listed("acme", "open", 0.0)), requests.ConnectionError("refused"))
    with stubbed(stub, clock, max_stale_s=10.0) as client:
        client.allow("acme")
        clock.advance(1.0)
        bridged = client.allow("acme")
        clock.advance(9.0)
        later = client.allow("acme")
    assert (bridged.allow, bridged.state, bridged.source) == (False, "open", Source.STALE)
    assert (later.allow, later.source) == (True, Source.FALLBACK)


def test_after_a_failure_it_asks_once_per_interval(clock: Clock) -> None:
    """A down receiver is asked once per interval, not once per gateway request."""
    stub = Stub(requests.ConnectTimeout("slow"))
    with stubbed(stub, clock, fail_open=False) as client:
        decisions = [client.allow(f"t{i}") for i in range(20)]
        assert stub.calls == 1
        clock.advance(1.0)
        client.allow("t0")
    assert stub.calls == 2
    assert {(d.allow, d.source) for d in decisions} == {(False, Source.FALLBACK)}


def test_shadow_feed_allows_and_says_what_enforcement_would_do(clock: Clock) -> None:
    """ENFORCEMENT=shadow: served, with would_allow False for the gateway to count."""
    entry = listed("acme", "open", 100.0, would_allow_percent=0.0)
    with stubbed(Stub(feed(entry)), clock) as client:
        decision = client.allow("acme")
    assert (decision.allow, decision.would_allow) == (True, False)


@pytest.mark.parametrize(
    "answer",
    [
        (200, {"tenants": [{"tenant_id": "acme", "state": "open"}]}),
        (200, {"tenants": [{"tenant_id": "acme", "state": "open", "allowed_percent": "0"}]}),
        (200, {"version": "1"}),
        (200, ["tenants"]),
        (200, "ok"),
        (304, None),
    ],
)
def test_malformed_answer_is_a_failure(clock: Clock, answer: Answer) -> None:
    """Anything but the documented shape (or a 304 with no list) is an unreachable receiver."""
    with stubbed(Stub(answer), clock, fail_open=False) as client:
        decision = client.allow("acme")
    assert (decision.allow, decision.source) == (False, Source.FALLBACK)


@pytest.mark.parametrize("tenant_id", ["", "a/b", "x}:*", "../admin", "a" * 65, "ü"])
def test_invalid_tenant_ids_are_allowed_without_asking(clock: Clock, tenant_id: str) -> None:
    """The receiver never isolates an id it rejects, so there is nothing to ask."""
    stub = Stub(feed())
    with stubbed(stub, clock, fail_open=False) as client:
        decision = client.allow(tenant_id)
    assert (decision.allow, decision.source, stub.calls) == (True, Source.LOCAL, 0)
