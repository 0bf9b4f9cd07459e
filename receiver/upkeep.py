"""What time does to breakers when nobody asks: due transitions recorded, trips the
guard or a shared cause held back retried, victims released, and guard slots and
deny-list entries that disagree with their breakers repaired."""

from __future__ import annotations

import logging
import time

from receiver.breaker import ISOLATING, TransitionEvent, is_held, release_hold, tick
from receiver.config import BreakerSettings
from receiver.containment import release_victims
from receiver.store import Change, ScopeStore, Snapshot
from receiver.store.admission import entry_of
from receiver.store.commit import commit_scopes
from receiver.store.slots import Slot

log = logging.getLogger(__name__)


def sweep(
    store: ScopeStore,
    settings: BreakerSettings,
    now: float,
    max_isolated_percent: float | None = None,
    shared_settle_s: float = 60.0,
    shared_release_window_s: float = 60.0,
    confirm_after_s: float = 0.5,
) -> list[TransitionEvent]:
    """Record the time-based transitions that are due, even if nobody reads the state.

    With `max_isolated_percent`, also retry trips the blast-radius guard held back:
    a tenant whose isolation alert still fires gets the slot another tenant freed
    (its alert will not be delivered again, so nothing else would retry it), unless a
    shared cause holds trips back. While one fires, victims isolated just before it
    became known are released (a delivery may have raced the cause's own). Then
    repair guard slots that disagree with their breakers (a process died between a
    commit and its slot update, or between taking slots and committing): a
    disagreement seen again `confirm_after_s` later at the same breaker version is no
    commit racing its slot update, and is repaired within this sweep."""
    events: list[TransitionEvent] = []
    observed: dict[str, Snapshot] = {}
    """Tenants the sweep left unchanged, as read: their slots and deny-list entries
    are checked against them."""
    taken: dict[str, Slot] = {}
    cause = store.causes.read(now)
    retry_held = max_isolated_percent is not None and cause.hold_reason(shared_settle_s) is None

    def compute(snapshot: Snapshot) -> tuple[Change | None, list[TransitionEvent]]:
        breaker, made = tick(snapshot.breaker, now, settings)
        if retry_held and max_isolated_percent is not None and is_held(breaker, settings):
            slot = taken.get(snapshot.scope)
            if slot is None:  # a re-read after a lost compare-and-set
                slot = store.slots.acquire(snapshot.scope, max_isolated_percent, now)
                taken[snapshot.scope] = slot
            if slot.granted:
                breaker, step = release_hold(breaker, now)
                made += step
        if not made:
            observed[snapshot.scope] = snapshot
            return None, []
        observed.pop(snapshot.scope, None)
        change = Change(snapshot.scope, snapshot.version, breaker=breaker, transitions=made)
        return change, [TransitionEvent(snapshot.scope, t) for t in made]

    for batch in store.iter_known_tenants():
        scopes: dict[str, list[str]] = {tenant: [] for tenant in batch}
        first = store.read(scopes, now)
        if retry_held and max_isolated_percent is not None:
            # The held trips of the batch ask for slots together: one round trip,
            # not one per tenant (a storm leaves thousands held).
            held = [
                t for t, s in first.items() if is_held(tick(s.breaker, now, settings)[0], settings)
            ]
            taken.update(store.slots.acquire_many(held, max_isolated_percent, now))
        outcome = commit_scopes(store, scopes, compute, now, first_read=first, taken=taken)
        for made in outcome.values():
            events += made
    repair_deny_list(store, observed)
    if cause.active:
        events += release_victims(store, settings, cause, shared_release_window_s, now)
    holding = store.slots.isolated()
    doubts = {
        tenant: (snapshot.version, isolating)
        for tenant, snapshot in observed.items()
        if (isolating := snapshot.breaker.state in ISOLATING) != (tenant in holding)
    }
    repaired = store.slots.repair(doubts)
    doubts = {tenant: doubt for tenant, doubt in doubts.items() if tenant not in repaired}
    if doubts:
        time.sleep(confirm_after_s)
        again = store.read({tenant: [] for tenant in doubts}, now)
        holding = store.slots.isolated()
        doubts = {
            tenant: (version, isolating)
            for tenant, (version, isolating) in doubts.items()
            if again[tenant].version == version and isolating != (tenant in holding)
        }
        repaired += store.slots.repair(doubts) if doubts else []
    for tenant in repaired:
        log.warning("guard slot of tenant %s repaired to match its breaker", tenant)
    return events


def repair_deny_list(store: ScopeStore, read: dict[str, Snapshot]) -> None:
    """Entries that disagree with the breaker read: a process died between a commit
    and its deny-list update, or the list predates the breaker (an upgrade, a flushed
    key). The list's own versions keep a newer commit's entry from being overwritten
    by this older read."""
    listed = store.admission.entries()
    stale: dict[str, tuple[int, str]] = {}
    for tenant, snapshot in read.items():
        entry = entry_of(snapshot.breaker)
        if listed.get(tenant, "") != entry:
            stale[tenant] = (snapshot.version, entry)
    if stale:
        store.admission.follow(stale)
        log.info("deny-list: %d entries brought in line with their breakers", len(stale))
