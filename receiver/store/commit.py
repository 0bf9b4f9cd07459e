"""Compare-and-set commits of tenant and platform scopes: read, compute, commit, and
re-read the scopes that moved. Only the attempt whose commit wins keeps its result,
so each breaker transition is recorded exactly once however many workers race."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from receiver.alerts import PLATFORM_SCOPE
from receiver.breaker import ISOLATING
from receiver.store.admission import entry_of
from receiver.store.pending import Pending
from receiver.store.retry import MAX_ATTEMPTS, CommitConflict, attempts
from receiver.store.scope_wire import Change, Snapshot
from receiver.store.scopes import ScopeStore
from receiver.store.slots import Slot

Compute = Callable[[Snapshot], tuple[Change | None, Any]]


def commit_scopes(
    store: ScopeStore,
    scopes: Mapping[str, Sequence[str]],
    compute: Compute,
    now: float,
    known: Iterable[str] = (),
    first_read: Mapping[str, Snapshot] | Iterable[Snapshot] | None = None,
    taken: MutableMapping[str, Slot] | None = None,
    later: Pending | None = None,
    max_isolated_percent: float | None = None,
) -> dict[str, Any]:
    """Read, compute and commit each scope, re-reading the ones that moved.
    `first_read`, if given, is a fresh read of exactly `scopes` to start from: their
    snapshots, or a stream of them still arriving (each computed as it comes).

    A change that trips a tenant may ask the commit for its guard slot (`Change.slot`,
    under `max_isolated_percent`). A refused slot goes in `taken` and the scope is
    computed again from the same read, for `compute` to find it there.

    `compute` returns the change to write (or None) and a result to hand back; a
    result counts only from the attempt whose commit won. Afterwards the guard's
    isolation slots and the gateways' deny-list follow the breakers this call
    committed. A scope left unchanged keeps its slot as it is (the read may be stale
    by now: another process may have just opened it), except that a slot the caller
    took in `taken` (read at the end) and did not use is given back. With `later`,
    those follow-up writes are left there for the next round trip to carry."""
    results: dict[str, Any] = {}
    final: dict[str, bool] = {}
    entries: dict[str, tuple[int, str]] = {}
    unchanged: dict[str, bool] = {}
    granted: set[str] = set()
    pending = dict(scopes)
    known = list(known)
    taken = {} if taken is None else taken
    again: dict[str, Snapshot] = {}
    for attempt_no in attempts():
        read: Iterable[Snapshot]
        if attempt_no == 0 and first_read is not None:
            read = first_read.values() if isinstance(first_read, Mapping) else first_read
        else:
            moved = {scope: keys for scope, keys in pending.items() if scope not in again}
            read = [*again.values(), *(store.read(moved, now) if moved else {}).values()]
        again = {}
        changes: list[Change] = []
        attempt: dict[str, Any] = {}
        snapshots: dict[str, Snapshot] = {}
        computed = _computed(read, compute, snapshots, attempt, changes)
        retry: dict[str, Sequence[str]] = {}
        # Each part's outcomes while Redis still runs the later parts.
        for change, version in store.committing(computed, now, known, max_isolated_percent):
            if isinstance(version, Slot):
                taken[change.scope] = version
                again[change.scope] = snapshots[change.scope]
                retry[change.scope] = pending[change.scope]
            elif version:
                results[change.scope] = attempt[change.scope]
                unchanged.pop(change.scope, None)
                if change.slot:
                    granted.add(change.scope)
                if change.breaker is not None:
                    final[change.scope] = change.breaker.state in ISOLATING
                    entries[change.scope] = (version, entry_of(change.breaker))
            else:
                retry[change.scope] = pending[change.scope]
        committing = {change.scope for change in changes}
        for scope, result in attempt.items():
            if scope not in committing:
                results[scope] = result
                unchanged[scope] = snapshots[scope].breaker.state in ISOLATING
        known = []
        if not retry:
            for scope, slot in taken.items():
                if slot.granted and scope in unchanged and not unchanged[scope]:
                    final[scope] = False
            final.pop(PLATFORM_SCOPE, None)
            held = granted | {scope for scope, slot in taken.items() if slot.granted}
            final = {
                s: isolating for s, isolating in final.items() if not (isolating and s in held)
            }
            # A slot this call took for a tenant now isolating is already held.
            store.follow(final, entries, later)
            return results
        pending = retry
    raise CommitConflict(f"scopes still contended after {MAX_ATTEMPTS} attempts: {sorted(pending)}")


def _computed(
    read: Iterable[Snapshot],
    compute: Compute,
    snapshots: dict[str, Snapshot],
    attempt: dict[str, Any],
    changes: list[Change],
) -> Iterator[Change]:
    """Each scope's change, computed as the store takes it: it sends one part to
    Redis while the next is computed. Every snapshot computed goes in `snapshots`,
    every result in `attempt`, every change in `changes`."""
    for snapshot in read:
        scope = snapshot.scope
        snapshots[scope] = snapshot
        change, attempt[scope] = compute(snapshot)
        if change is not None:
            changes.append(change)
            yield change
