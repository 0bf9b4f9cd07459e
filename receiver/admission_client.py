"""The admission check for the platform's gateway to embed: should this tenant's request
be served? One call to `GET /api/v1/tenants/<id>/admission`, a short cache, and a
decision of its own when the receiver cannot answer.

When the receiver is unreachable, slow, or answers 5xx (Redis down behind it), the
client decides by `fail_open`:

- fail open (the default) keeps serving every tenant, the failing one included. An
  outage of blast-radius then costs the isolation of a bad tenant: the platform is
  back where it was without blast-radius, no worse.
- fail closed blocks every tenant. An outage of blast-radius becomes an outage of the
  whole platform, exactly the blast radius this project exists to prevent. Choose it
  only where serving a bad tenant is worse than serving nobody.

Answers are reused for `cache_ttl_s`, since the gateway asks on every request; a
half-open answer is not, as each request there is a probe the receiver admits by
chance. After a failure the client stops asking for `cache_ttl_s`, so a hung receiver
costs one timeout per interval instead of one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import requests

from receiver.tenants import is_valid_tenant_id

log = logging.getLogger(__name__)

UNKNOWN_STATE = "unknown"
HALF_OPEN = "half_open"


class Source(StrEnum):
    RECEIVER = "receiver"
    CACHE = "cache"
    """The receiver's answer from less than `cache_ttl_s` ago."""
    FALLBACK = "fallback"
    """The receiver could not answer: decided by `fail_open`."""
    LOCAL = "local"
    """Not a valid tenant id: the receiver can never isolate it, so it is allowed."""


@dataclass(frozen=True)
class Decision:
    allow: bool
    state: str
    """The breaker state, or "unknown" when the receiver could not be asked."""
    retry_after_s: int | None
    source: Source


@dataclass(frozen=True)
class _Cached:
    decision: Decision
    at: float


def _from_cache(cached: _Cached) -> Decision:
    d = cached.decision
    return Decision(d.allow, d.state, d.retry_after_s, Source.CACHE)


class Unavailable(Exception):
    """The receiver gave no usable answer."""


class AdmissionClient:
    """Thread-safe; keep one per gateway process and call `close()` on shutdown."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout_s: float = 0.5,
        fail_open: bool = True,
        cache_ttl_s: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.fail_open = fail_open
        self.cache_ttl_s = cache_ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._down_until = float("-inf")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"

    def allow(self, tenant_id: str) -> Decision:
        """Whether to serve one request of `tenant_id`. Never raises."""
        if not is_valid_tenant_id(tenant_id):
            return Decision(True, UNKNOWN_STATE, None, Source.LOCAL)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(tenant_id)
            fresh = cached is not None and now - cached.at < self.cache_ttl_s
            down = now < self._down_until
        if cached is not None and fresh and (down or cached.decision.state != HALF_OPEN):
            return _from_cache(cached)
        if down:
            return self._fallback()
        try:
            decision = self._ask(tenant_id)
        except Unavailable as exc:
            with self._lock:
                was_up = self._down_until < now
                self._down_until = now + self.cache_ttl_s
            if was_up:
                log.warning(
                    "admission check unavailable (%s): failing %s",
                    exc,
                    "open" if self.fail_open else "closed",
                )
            return _from_cache(cached) if cached is not None and fresh else self._fallback()
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache = {
                    t: c for t, c in self._cache.items() if now - c.at < self.cache_ttl_s
                }
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
            self._cache[tenant_id] = _Cached(decision, now)
            self._down_until = float("-inf")
        return decision

    def _fallback(self) -> Decision:
        return Decision(self.fail_open, UNKNOWN_STATE, None, Source.FALLBACK)

    def _ask(self, tenant_id: str) -> Decision:
        url = f"{self.base_url}/api/v1/tenants/{quote(tenant_id, safe='')}/admission"
        try:
            response = self.session.get(url, timeout=(self.timeout_s, self.timeout_s))
        except requests.RequestException as exc:
            raise Unavailable(exc.__class__.__name__) from None
        if response.status_code in (401, 403):
            log.error("admission check refused our token (HTTP %d)", response.status_code)
        if response.status_code != 200:
            raise Unavailable(f"HTTP {response.status_code}")
        try:
            body: Any = response.json()
            allow, state = body["allow"], body["state"]
            retry_after = body.get("retry_after_s")
        except (ValueError, TypeError, KeyError):
            raise Unavailable("malformed answer") from None
        if not isinstance(allow, bool) or not isinstance(state, str):
            raise Unavailable("malformed answer")
        if not isinstance(retry_after, int) or isinstance(retry_after, bool):
            retry_after = None
        return Decision(allow, state, retry_after, Source.RECEIVER)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> AdmissionClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
