"""What a gateway is told: the deny-list feed's entries and version, and which tenant
a forward-auth request is for. Pure: breakers in, answers out."""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from receiver.breaker import Breaker, State, next_transition_at, tick
from receiver.config import BreakerSettings, Enforcement
from receiver.tenants import is_valid_tenant_id

DENIED_STATES = frozenset({State.OPEN, State.HALF_OPEN, State.FORCED_OPEN})


@dataclass(frozen=True)
class FeedEntry:
    tenant_id: str
    state: State
    allowed_percent: float
    """Share of the tenant's requests to serve: 0 open, the probe share half open."""
    retry_after_s: int | None
    until: float | None
    """When the state moves by time alone (epoch s), if it does."""


def entry(
    tenant_id: str, breaker: Breaker, now: float, settings: BreakerSettings
) -> FeedEntry | None:
    """The tenant's entry at `now`, time-based transitions applied; None if admitted."""
    current, _ = tick(breaker, now, settings)
    if current.state not in DENIED_STATES:
        return None
    until = next_transition_at(current, settings)
    if current.state is State.HALF_OPEN:
        return FeedEntry(tenant_id, current.state, settings.half_open_probe_percent, 1, until)
    if current.state is State.FORCED_OPEN:
        return FeedEntry(tenant_id, current.state, 0.0, None, None)
    wait = 1 if until is None else max(1, math.ceil(until - now))
    return FeedEntry(tenant_id, current.state, 0.0, wait, until)


def entries(
    breakers: Mapping[str, Breaker], now: float, settings: BreakerSettings
) -> list[FeedEntry]:
    found = (entry(t, b, now, settings) for t, b in sorted(breakers.items()))
    return [e for e in found if e is not None]


def feed_version(counter: int, listed: Iterable[FeedEntry], enforcement: Enforcement) -> str:
    """The stored counter, plus a digest of what time alone changed since (a breaker
    half-opened before the sweep recorded it) and of the enforcement mode: the same
    on every receiver reading the same Redis at the same second."""
    parts = [enforcement.value]
    parts += [f"{e.tenant_id}:{e.state.value}:{e.until!r}" for e in listed]
    digest = zlib.crc32("\n".join(parts).encode())
    return f"{counter}-{digest:08x}"


def next_change_at(listed: Iterable[FeedEntry]) -> float | None:
    """When the feed changes by time alone next."""
    times = [e.until for e in listed if e.until is not None]
    return min(times) if times else None


def tenant_of(
    header_value: str | None, uris: Iterable[str], pattern: re.Pattern[str] | None
) -> str | None:
    """The tenant a forward-auth request is for: the header, else `pattern` over the
    original URI; None when neither names a valid tenant id."""
    if header_value:
        value = header_value.strip()
        return value if is_valid_tenant_id(value) else None
    if pattern is None:
        return None
    for uri in uris:
        if not uri:
            continue
        match = pattern.search(uri)
        if match is None:
            continue
        found = match.groupdict().get("tenant") or match.group(1)
        return found if found and is_valid_tenant_id(found) else None
    return None
