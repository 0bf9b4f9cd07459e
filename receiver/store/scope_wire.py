"""Scopes as the scope scripts see them: what a caller read (`Snapshot`), what it
wants written (`Change`), a delivery's read as it arrives (`DeliveryRead`), and the
two ends of the wire, snapshots from `READ_SCOPES` replies and a change as its part
of a `COMMIT_SCOPES` call."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from receiver.breaker import Breaker, Transition
from receiver.causes import SharedCause
from receiver.quick_init import quick_init
from receiver.store.codec import (
    BREAKER_FIELDS,
    breaker_from_fields,
    breaker_values,
    transition_json,
)
from receiver.store.slots import GuardRead

NEW_BREAKER = Breaker()
COMMIT_KEYS = ("state", "transitions", "seen", "alerts", "tenant", "resolved")
"""A scope's keys in a `COMMIT_SCOPES` call, in its order."""
READ_KEYS = ("state", "tenant", "seen")
"""A scope's keys in a `READ_SCOPES` call, in its order."""


@quick_init
@dataclass(frozen=True)
class Snapshot:
    scope: str
    version: int
    breaker: Breaker
    tier_override: str | None = None
    tier_label: str | None = None
    seen: frozenset[str] = frozenset()


@dataclass
class Change:
    """What one caller wants to write to one scope, read at `expected_version`."""

    scope: str
    expected_version: int
    breaker: Breaker | None = None
    transitions: list[Transition] = field(default_factory=list)
    delivery_keys: list[str] = field(default_factory=list)
    alerts: dict[str, str] = field(default_factory=dict)
    """Fingerprint -> the alert's record (JSON)."""
    resolved: set[str] = field(default_factory=set)
    """Fingerprints in `alerts` whose alert is resolved: its record is forgotten after
    the idempotency TTL."""
    forget_keys: list[str] = field(default_factory=list)
    tier_label: str = ""
    slot: bool = False
    """The change trips the tenant: it commits only if the tenant then holds one of
    the guard's isolation slots, taken in the same script (`commits_slots`)."""


class DeliveryRead:
    """All a delivery reads before it computes. A large delivery's snapshots may
    still be arriving, one part after another: `stream` gives each as its part is
    answered (so computing starts with the first), `snapshots` waits for them all."""

    def __init__(
        self,
        parts: Iterator[dict[str, Snapshot]],
        cause: SharedCause,
        board_unseen: bool,
        guard: GuardRead | None = None,
    ) -> None:
        self._parts = parts
        self._got: dict[str, Snapshot] = {}
        self.cause = cause
        self.board_unseen = board_unseen
        """Whether any of the board keys asked for is new to the incident board."""
        self.guard = guard
        """The guard's counts, if asked for."""

    def stream(self) -> Iterator[Snapshot]:
        yield from list(self._got.values())
        for part in self._parts:
            self._got.update(part)
            yield from part.values()

    @property
    def snapshots(self) -> dict[str, Snapshot]:
        for part in self._parts:
            self._got.update(part)
        return self._got


def snapshots_of(batches: list[list[str]], replies: Iterator[Any]) -> dict[str, Snapshot]:
    """The snapshots `READ_SCOPES` calls for `batches` (the scopes of each) answered,
    taken from `replies`."""
    snapshots: dict[str, Snapshot] = {}
    for batch in batches:
        for scope, read in zip(batch, next(replies), strict=True):
            if read == 0:  # nothing stored yet
                snapshots[scope] = Snapshot(scope, 0, NEW_BREAKER)
                continue
            state, tier, label, seen = read
            if not state[0] and not state[1]:
                # Never committed (a storm's new tenants): no breaker to parse.
                breaker = NEW_BREAKER
            else:
                breaker = breaker_from_fields(dict(zip(BREAKER_FIELDS, state[1:], strict=True)))
            snapshots[scope] = Snapshot(
                scope, int(state[0] or 0), breaker, tier or None, label or None, frozenset(seen)
            )
    return snapshots


def commit_args(change: Change, args: list[Any], guarded: bool) -> None:
    """One scope's part of a `COMMIT_SCOPES` call, appended to `args`."""
    values = breaker_values(change.breaker) if change.breaker is not None else []
    transitions = change.transitions
    if len(transitions) > 1:
        transitions = sorted(transitions, key=lambda t: t.at)
    alerts = change.alerts
    if change.resolved:
        resolved = [fp for fp in alerts if fp in change.resolved]
        firing = [fp for fp in alerts if fp not in change.resolved]
    else:
        resolved, firing = [], list(alerts)
    if change.slot and not guarded:
        raise ValueError(f"{change.scope}: a trip that needs a guard slot, and none to take")
    trips = change.scope if change.slot else ""
    args += (change.expected_version, change.tier_label, trips, len(values), *values)
    args += (len(transitions), *map(transition_json, transitions))
    args += (len(change.delivery_keys), *change.delivery_keys, len(alerts))
    for fingerprint, body in alerts.items():
        args += (fingerprint, body)
    args += (len(resolved), *resolved, len(firing), *firing)
    args += (len(change.forget_keys), *change.forget_keys)
