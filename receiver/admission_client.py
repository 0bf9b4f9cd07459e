"""The admission check for a gateway written in Python: should this tenant's request be
served? The client keeps the receiver's deny-list (`GET /api/v1/admission`), refreshed
with one conditional request per `refresh_s` for every tenant at once, and decides
each request in-process: a tenant not listed is served, an open one refused, a
half-open one served by a local random draw against its probe share.

When the receiver is unreachable, slow, or answers 5xx (Redis down behind it), the
client keeps deciding from the last good list for up to `max_stale_s`; with no good
list that recent, it decides by `fail_open`:

- fail open (the default) keeps serving every tenant, the failing one included. An
  outage of blast-radius then costs the isolation of a bad tenant: the platform is
  back where it was without blast-radius, no worse.
- fail closed blocks every tenant. An outage of blast-radius becomes an outage of the
  whole platform, exactly the blast radius this project exists to prevent. Choose it
  only where serving a bad tenant is worse than serving nobody.

A refresh happens on the request path of whichever call finds the list due, at most
one at a time; the others decide from the list they have, so a hung receiver costs
one timeout per interval instead of one per request.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests

from receiver.tenants import is_valid_tenant_id

log = logging.getLogger(__name__)

UNKNOWN_STATE = "unknown"
CLOSED = "closed"
FEED_PATH = "/api/v1/admission"


class Source(StrEnum):
    FEED = "feed"
    """The list as of the last refresh, which succeeded."""
    STALE = "stale"
    """The last good list, kept while the receiver cannot answer (up to `max_stale_s`)."""
    FALLBACK = "fallback"
    """No good list recent enough: decided by `fail_open`."""
    LOCAL = "local"
    """Not a valid tenant id: the receiver can never isolate it, so it is allowed."""


@dataclass(frozen=True)
class Decision:
    allow: bool
    state: str
    """The breaker state ("closed" when not listed), or "unknown" without a list."""
    retry_after_s: int | None
    source: Source
    would_allow: bool = True
    """What enforcement would answer: differs from `allow` only in shadow mode."""


@dataclass(frozen=True)
class _Entry:
    state: str
    allowed_percent: float
    would_allow_percent: float
    retry_at: float | None
    """On the client's clock: when the tenant may be asked about again."""


@dataclass(frozen=True)
class _List:
    entries: dict[str, _Entry]
    etag: str | None
    fetched_at: float


class Unavailable(Exception):
    """The receiver gave no usable answer."""


def _percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unavailable("malformed answer")
    return float(value)


def parse_feed(body: Any, fetched_at: float) -> dict[str, _Entry]:
    """The feed's entries, timed on the client's clock; raises `Unavailable`."""
    try:
        items = body["tenants"]
        found: dict[str, _Entry] = {}
        for item in items:
            tenant, state = item["tenant_id"], item["state"]
            if not isinstance(tenant, str) or not isinstance(state, str):
                raise Unavailable("malformed answer")
            allowed = _percent(item["allowed_percent"])
            would = _percent(item.get("would_allow_percent", allowed))
            retry = item.get("retry_after_s")
            valid_retry = isinstance(retry, int) and not isinstance(retry, bool)
            retry_at = fetched_at + retry if valid_retry else None
            found[tenant] = _Entry(state, allowed, would, retry_at)
    except (TypeError, KeyError):
        raise Unavailable("malformed answer") from None
    return found


class AdmissionClient:
    """Thread-safe; keep one per gateway process and call `close()` on shutdown."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout_s: float = 0.5,
        fail_open: bool = True,
        refresh_s: float = 1.0,
        max_stale_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.url = base_url.rstrip("/") + FEED_PATH
        self.timeout_s = timeout_s
        self.fail_open = fail_open
        self.refresh_s = refresh_s
        self.max_stale_s = max_stale_s
        self._clock = clock
        self._draw = draw
        self._list: _List | None = None
        self._next_refresh = float("-inf")
        self._refreshing = threading.Lock()
        self._down = False
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"

    def allow(self, tenant_id: str) -> Decision:
        """Whether to serve one request of `tenant_id`. Never raises."""
        if not is_valid_tenant_id(tenant_id):
            return Decision(True, UNKNOWN_STATE, None, Source.LOCAL)
        now = self._clock()
        if now >= self._next_refresh:
            self.refresh(now)
        current = self._list
        if current is None or now - current.fetched_at >= self.max_stale_s:
            return Decision(self.fail_open, UNKNOWN_STATE, None, Source.FALLBACK, self.fail_open)
        source = Source.STALE if self._down else Source.FEED
        entry = current.entries.get(tenant_id)
        if entry is None:
            return Decision(True, CLOSED, None, source)
        draw = self._draw() * 100
        allow, would = draw < entry.allowed_percent, draw < entry.would_allow_percent
        retry = None
        if not allow and entry.retry_at is not None:
            retry = max(1, math.ceil(entry.retry_at - now))
        return Decision(allow, entry.state, retry, source, would)

    def refresh(self, now: float) -> None:
        """One conditional request for the list, unless another call is making it."""
        if not self._refreshing.acquire(blocking=False):
            return
        try:
            self._next_refresh = now + self.refresh_s
            try:
                self._list = self._fetch(self._list, now)
            except Unavailable as exc:
                if not self._down:
                    log.warning(
                        "admission feed unavailable (%s): keeping the last good list for "
                        "up to %.0fs, then failing %s",
                        exc,
                        self.max_stale_s,
                        "open" if self.fail_open else "closed",
                    )
                self._down = True
                return
            self._down = False
        finally:
            self._refreshing.release()

    def _fetch(self, current: _List | None, now: float) -> _List:
        headers = {"If-None-Match": current.etag} if current and current.etag else {}
        try:
            response = self.session.get(
                self.url, headers=headers, timeout=(self.timeout_s, self.timeout_s)
            )
        except requests.RequestException as exc:
            raise Unavailable(exc.__class__.__name__) from None
        if response.status_code == 304 and current is not None:
            return _List(current.entries, current.etag, now)
        if response.status_code in (401, 403):
            log.error("admission feed refused our token (HTTP %d)", response.status_code)
        if response.status_code != 200:
            raise Unavailable(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise Unavailable("malformed answer") from None
        return _List(parse_feed(body, now), response.headers.get("ETag"), now)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> AdmissionClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
