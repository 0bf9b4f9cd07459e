"""Alertmanager's side of a load test on a live receiver: webhook deliveries at a steady
rate from a few threads, each retried with the same body after a 5xx (or no answer) as
Alertmanager retries, until a 2xx or a bounded deadline; every attempt is recorded, so a
test can say what was acknowledged, what failed, and how long the receiver was away."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.conftest import READER, WEBHOOK

NO_ANSWER = 0
"""The status recorded for an attempt that got no HTTP answer (refused, timed out)."""


@dataclass(frozen=True)
class Attempt:
    started: float
    answered: float
    """`time.monotonic()` when the request was sent and when its answer (or error) came."""
    status: int
    body: str


@dataclass
class Delivery:
    """One Alertmanager notification and every attempt at delivering it."""

    tenant_id: str
    body: dict[str, Any]
    attempts: list[Attempt] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    """The 2xx answer's JSON, once there is one."""

    @property
    def acknowledged(self) -> bool:
        return self.reply is not None

    @property
    def refused(self) -> list[Attempt]:
        """Attempts answered 4xx: Alertmanager would drop the notification."""
        return [a for a in self.attempts if 400 <= a.status < 500]

    def transitions(self) -> list[tuple[str, str, float]]:
        """(from, to, at) of what the acknowledging answer says this call changed."""
        moves = (self.reply or {}).get("transitions", [])
        return [(t["from"], t["to"], t["at"]) for t in moves]


def assert_converged(deliveries: Sequence[Delivery]) -> None:
    """Every delivery acknowledged in the end; none refused (a 4xx is never retried)."""
    refused = [(d.tenant_id, a.status, a.body) for d in deliveries for a in d.refused]
    assert not refused, refused[:5]
    lost = [(d.tenant_id, [a.status for a in d.attempts]) for d in deliveries if not d.reply]
    assert not lost, lost[:5]


def failed(attempt: Attempt) -> bool:
    return attempt.status == NO_ANSWER or attempt.status >= 500


class Sender:
    """Posts deliveries to the receiver's webhook, retrying as Alertmanager would."""

    def __init__(self, receiver_url: str, backoff_s: float = 0.25, backoff_cap_s: float = 2.0):
        self.url = f"{receiver_url}/webhook/alertmanager"
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self.acknowledged = 0
        self._lock = threading.Lock()
        self._session = threading.local()

    def deliver(self, delivery: Delivery, deadline: float) -> Delivery:
        """Until a 2xx, a 4xx (never retried, as in Alertmanager) or `deadline`."""
        backoff = self.backoff_s
        while True:
            started = time.monotonic()
            try:
                response = self._http().post(
                    self.url, json=delivery.body, headers=WEBHOOK, timeout=15
                )
                attempt = Attempt(started, time.monotonic(), response.status_code, response.text)
            except requests.RequestException as exc:
                attempt = Attempt(started, time.monotonic(), NO_ANSWER, repr(exc))
            delivery.attempts.append(attempt)
            if 200 <= attempt.status < 300:
                delivery.reply = response.json()
                with self._lock:
                    self.acknowledged += 1
                return delivery
            if not failed(attempt) or time.monotonic() + backoff > deadline:
                return delivery
            time.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_cap_s)

    def run(
        self,
        deliveries: Sequence[Delivery],
        rate_per_s: float,
        threads: int,
        retry_budget_s: float = 90.0,
    ) -> None:
        """Start delivery i no earlier than i / rate_per_s from now, on `threads`
        threads. Retries stop `retry_budget_s` after the last one's start time; what
        has not started by then is not sent (and stays unacknowledged)."""
        start = time.monotonic()
        deadline = start + len(deliveries) / rate_per_s + retry_budget_s
        slots = iter(range(len(deliveries)))
        slot_lock = threading.Lock()

        def drain(_: int) -> None:
            while True:
                with slot_lock:
                    index = next(slots, None)
                if index is None or time.monotonic() > deadline:
                    return
                time.sleep(max(0.0, start + index / rate_per_s - time.monotonic()))
                self.deliver(deliveries[index], deadline)

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(drain, range(threads)))

    def _http(self) -> requests.Session:
        session: requests.Session | None = getattr(self._session, "value", None)
        if session is None:
            session = self._session.value = requests.Session()
        return session


@dataclass(frozen=True)
class Outage:
    """What Alertmanager saw: attempts, how many failed and how, and the failover gap
    from the first failed answer to the first successful one after it."""

    attempts: int
    server_errors: int
    no_answer: int
    first_failure: float | None
    recovered: float | None
    """`time.monotonic()` of the first failed answer and of the first 2xx after it."""
    reasons: dict[str, int]
    """Failed attempts by status and message."""
    slowest_s: float
    """The longest an attempt waited for its answer."""

    @property
    def gap_s(self) -> float | None:
        if self.first_failure is None or self.recovered is None:
            return None
        return self.recovered - self.first_failure

    def describe(self, since: float | None = None) -> str:
        failures = f"{self.attempts} attempts, {self.server_errors} answered 5xx"
        failures += f", {self.no_answer} unanswered, the slowest answered in {self.slowest_s:.2f}s"
        if self.gap_s is None or self.first_failure is None or self.recovered is None:
            return failures
        reasons = ", ".join(f"{count} x {reason}" for reason, count in self.reasons.items())
        text = f"{failures} ({reasons}); failover gap {self.gap_s:.2f}s"
        if since is not None:
            text += (
                f" (first failure {self.first_failure - since:.2f}s, first success after "
                f"it {self.recovered - since:.2f}s after the kill)"
            )
        return text


def outage(deliveries: Sequence[Delivery]) -> Outage:
    attempts = sorted((a for d in deliveries for a in d.attempts), key=lambda a: a.answered)
    failures = [a for a in attempts if failed(a)]
    first = failures[0].answered if failures else None
    later = [a for a in attempts if first is not None and a.answered > first]
    return Outage(
        attempts=len(attempts),
        server_errors=sum(a.status >= 500 for a in attempts),
        no_answer=sum(a.status == NO_ANSWER for a in attempts),
        first_failure=first,
        recovered=next((a.answered for a in later if 200 <= a.status < 300), None),
        reasons=dict(Counter(reason(a) for a in failures)),
        slowest_s=max((a.answered - a.started for a in attempts), default=0.0),
    )


def reason(attempt: Attempt) -> str:
    """A failed attempt's status and the message of its error envelope."""
    if attempt.status == NO_ANSWER:
        return attempt.body.split("(", 1)[0]
    try:
        message = json.loads(attempt.body).get("message", "")
    except ValueError:
        message = attempt.body[:60]
    return f"{attempt.status} {message}"


def tenant_views(receiver_url: str, tenant_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`GET /api/v1/tenants/<id>` for each tenant, a few at a time."""

    def view(tenant_id: str) -> dict[str, Any]:
        url = f"{receiver_url}/api/v1/tenants/{tenant_id}"
        response = requests.get(url, headers=READER, timeout=10)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(tenant_ids, pool.map(view, tenant_ids), strict=True))
