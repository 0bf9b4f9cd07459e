"""Alertmanager notifications as plain data, and what each alert means to us."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property, lru_cache

from receiver.quick_init import quick_init

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Alertmanager's way of saying an alert has no end yet."""
NOISY_NEIGHBOR = "noisy_neighbor"
"""`cause` label of the alert naming the tenant whose load brings a shared pool down."""
SHARED = "shared"
"""`cause` label of a tenant's alert while it fails together with the platform."""
PLATFORM_SCOPE = "_platform"
"""Scope of alerts that name no tenant; not a valid tenant id, so it cannot collide."""


class Kind(StrEnum):
    ISOLATE = "isolate"
    """Drives the tenant's breaker (`action="isolate"` and a `tenant_id`)."""
    TENANT = "tenant"
    """Names a tenant but does not isolate it (paging, traffic stopped)."""
    WATCHDOG = "watchdog"
    PLATFORM = "platform"


@quick_init
@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    starts_at_s: float
    ends_at_s: float | None
    fingerprint: str
    generator_url: str = ""
    firing: bool = field(init=False, compare=False, repr=False)
    tenant_id: str | None = field(init=False, compare=False, repr=False)
    kind: Kind = field(init=False, compare=False, repr=False)
    culprit: bool = field(init=False, compare=False, repr=False)
    """An isolation alert naming the tenant whose load exhausts a shared resource."""
    victim: bool = field(init=False, compare=False, repr=False)
    """A tenant failing together with the platform: recorded, never isolated."""
    delivery_key: str = field(init=False, compare=False, repr=False)
    """Identity of this alert *state*: a repeat of it is a duplicate delivery.

    A firing alert's `endsAt` is left out because some Alertmanager versions move it
    forward on every re-send of the same firing alert."""

    def __post_init__(self) -> None:
        # Worked out once: a storm's payload asks each of 10,000 alerts a dozen times.
        labels = self.labels
        tenant_id = labels.get("tenant_id")
        if labels.get("alertname") == "Watchdog":
            kind = Kind.WATCHDOG
        elif tenant_id is None:
            kind = Kind.PLATFORM
        elif labels.get("action") == "isolate":
            kind = Kind.ISOLATE
        else:
            kind = Kind.TENANT
        culprit = kind is Kind.ISOLATE and labels.get("cause") == NOISY_NEIGHBOR
        firing = self.status == "firing"
        state = (self.fingerprint, self.status, self.starts_at)
        self.__dict__.update(  # frozen: past the refusing __setattr__, as quick_init does
            firing=firing,
            tenant_id=tenant_id,
            kind=kind,
            culprit=culprit,
            victim=kind is Kind.TENANT and labels.get("cause") == SHARED,
            delivery_key=_state_key(state if firing else (*state, self.ends_at)),
        )

    @property
    def shared_cause(self) -> bool:
        """Says the failure has a shared cause (the platform failing broadly, or a noisy
        neighbour): while one fires, tenants failing with everyone are victims."""
        return self.culprit or (
            self.kind is Kind.PLATFORM and self.labels.get("scope") == "platform"
        )

    @cached_property
    def firing_key(self) -> str:
        """The delivery key this alert had while it was firing."""
        return _state_key((self.fingerprint, "firing", self.starts_at))


def _state_key(parts: tuple[str, ...]) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class Notification:
    status: str
    alerts: list[Alert]
    receiver: str = ""
    group_key: str = ""
    group_labels: dict[str, str] = field(default_factory=dict)
    common_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    truncated_alerts: int = 0
    version: str = "4"
    rejected: list[dict[str, str]] = field(default_factory=list)
    """Alerts of the payload that failed validation, each with its reason."""


def label_fingerprint(labels: dict[str, str]) -> str:
    """Stand-in for a missing fingerprint: stable over the label set."""
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def rfc3339(at: float) -> str:
    """Epoch seconds as Alertmanager writes times, in UTC to the millisecond."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@lru_cache(maxsize=4096)
def to_epoch(stamp: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 time; None for Alertmanager's zero time.

    Raises ValueError for anything else. Go writes up to nine fractional digits;
    Python reads six, so the rest are dropped."""
    if stamp == ZERO_TIME or stamp.startswith("0001-01-01"):
        return None
    text = stamp.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)] or '0'}{rest[digits:]}"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("time zone missing")
    return moment.timestamp()
