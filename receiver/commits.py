"""Compare-and-set commits of tenant and platform scopes, and the breaker
transitions they make: read, compute, commit, and re-read the scopes that moved.
Only the caller whose commit wins keeps its result, so each transition is recorded
exactly once however many workers race."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from receiver import breaker as policy
from receiver.alerts import PLATFORM_SCOPE
from receiver.store import Change, Snapshot, Store
from receiver.store.scopes import Slot

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 25
LOGGED_TRANSITIONS = 50
"""Transitions logged one line each per batch; the rest are summed up in one line."""


class CommitConflict(RuntimeError):
    """A scope kept changing under us; the caller should answer 5xx and be retried."""


@dataclass(frozen=True)
class TransitionEvent:
    tenant_id: str
    transition: policy.Transition

    def as_dict(self) -> dict[str, Any]:
        t = self.transition
        return {
            "tenant_id": self.tenant_id,
            "from": t.from_state.value,
            "to": t.to_state.value,
            "at": t.at,
            "reason": t.reason,
            "suppressed": t.suppressed,
        }


Compute = Callable[[Snapshot], tuple[Change | None, Any]]


def commit_scopes(
    store: Store,
    scopes: Mapping[str, Sequence[str]],
    compute: Compute,
    now: float,
    known: Iterable[str] = (),
    first_read: Mapping[str, Snapshot] | None = None,
    taken: Mapping[str, Slot] | None = None,
) -> dict[str, Any]:
    """Read, compute and commit each scope, re-reading the ones that moved.
    `first_read`, if given, is a fresh read of exactly `scopes` to start from.

    `compute` returns the change to write (or None) and a result to hand back; a
    result counts only from the attempt whose commit won. Afterwards the guard's
    isolation slots follow the breakers this call committed. A scope left unchanged
    keeps its slot as it is (the read may be stale by now: another process may have
    just opened it), except that a slot the caller took in `taken` (read at the end)
    and did not use is given back."""
    results: dict[str, Any] = {}
    final: dict[str, bool] = {}
    unchanged: dict[str, bool] = {}
    pending = dict(scopes)
    known = list(known)
    for attempt_no in range(MAX_ATTEMPTS):
        if attempt_no:
            # Jittered back-off so racing writers stop colliding in lockstep.
            time.sleep(random.uniform(0, 0.001 * min(attempt_no, 10)))
        if attempt_no == 0 and first_read is not None:
            snapshots = dict(first_read)
        else:
            snapshots = store.read(pending, now)
        changes: list[Change] = []
        attempt: dict[str, Any] = {}
        for scope, snapshot in snapshots.items():
            change, result = compute(snapshot)
            attempt[scope] = result
            if change is None:
                results[scope] = result
                unchanged[scope] = snapshot.breaker.state in policy.ISOLATING
            else:
                changes.append(change)
        versions = store.commit(changes, now, known) if changes or known else []
        known = []
        retry: dict[str, Sequence[str]] = {}
        for change, version in zip(changes, versions, strict=True):
            if version:
                results[change.scope] = attempt[change.scope]
                unchanged.pop(change.scope, None)
                if change.breaker is not None:
                    final[change.scope] = change.breaker.state in policy.ISOLATING
            else:
                retry[change.scope] = pending[change.scope]
        if not retry:
            for scope, slot in (taken or {}).items():
                if slot.granted and scope in unchanged and not unchanged[scope]:
                    final[scope] = False
            final.pop(PLATFORM_SCOPE, None)
            if final:
                store.sync_isolated(final)
            return results
        pending = retry
    raise CommitConflict(f"scopes still contended after {MAX_ATTEMPTS} attempts: {sorted(pending)}")


def log_transitions(events: Sequence[TransitionEvent]) -> None:
    """One line per transition, up to `LOGGED_TRANSITIONS`; the rest of a large
    batch (a shared failure reaching thousands of tenants) as one summary line. Every
    transition is kept in its tenant's transition log either way."""
    for event in events[:LOGGED_TRANSITIONS]:
        t = event.transition
        log.info(
            "tenant %s breaker %s -> %s%s (%s)",
            event.tenant_id,
            t.from_state.value,
            t.to_state.value,
            " suppressed" if t.suppressed else "",
            t.reason,
            extra={"tenant_id": event.tenant_id},
        )
    rest = events[LOGGED_TRANSITIONS:]
    if rest:
        moves = Counter(
            f"{e.transition.from_state.value} -> {e.transition.to_state.value}" for e in rest
        )
        log.info(
            "%d more breaker transitions in this batch: %s",
            len(rest),
            ", ".join(f"{move} x{count}" for move, count in sorted(moves.items())),
        )
