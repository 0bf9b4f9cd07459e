"""Contain a failure with a shared cause: release the tenants isolated for a failure
they only suffered. Their trips stay held (`breaker.is_held`) until the cause is
over and its victims' alerts have settled."""

from __future__ import annotations

from receiver.breaker import TransitionEvent, is_victim_isolation, release_victim, tick
from receiver.causes import SharedCause
from receiver.config import BreakerSettings
from receiver.store import Change, ScopeStore, Snapshot
from receiver.store.commit import commit_scopes


def release_victims(
    store: ScopeStore,
    settings: BreakerSettings,
    cause: SharedCause,
    window_s: float,
    now: float,
) -> list[TransitionEvent]:
    """Close the breakers of tenants isolated since `window_s` before the shared cause
    started, for alerts that do not name them as a culprit."""
    since = cause.since
    if since is None:
        return []
    opened_since = since - window_s
    tenants = sorted(store.slots.isolated() - cause.culprits)
    if not tenants:
        return []
    reason = cause.release_reason()

    def compute(snapshot: Snapshot) -> tuple[Change | None, list[TransitionEvent]]:
        breaker, made = tick(snapshot.breaker, now, settings)
        if is_victim_isolation(breaker, opened_since):
            breaker, step = release_victim(breaker, now, reason, settings)
            made += step
        if not made:
            return None, []
        change = Change(snapshot.scope, snapshot.version, breaker=breaker, transitions=made)
        return change, [TransitionEvent(snapshot.scope, t) for t in made]

    results = commit_scopes(store, {tenant: [] for tenant in tenants}, compute, now)
    return [event for made in results.values() for event in made]
