"""An operator's override of one tenant's breaker, committed like every other change."""

from __future__ import annotations

from receiver.breaker import Action, TransitionEvent, apply_action, tick
from receiver.config import BreakerSettings
from receiver.store import Change, ScopeStore, Snapshot
from receiver.store.commit import commit_scopes


def act(
    store: ScopeStore,
    tenant_id: str,
    action: Action,
    reason: str,
    settings: BreakerSettings,
    now: float,
) -> list[TransitionEvent]:
    """An operator's override of one tenant's breaker."""

    def compute(snapshot: Snapshot) -> tuple[Change | None, list[TransitionEvent]]:
        breaker, made = tick(snapshot.breaker, now, settings)
        breaker, step = apply_action(breaker, action, now, reason)
        made += step
        if not made:
            return None, []
        change = Change(tenant_id, snapshot.version, breaker=breaker, transitions=made)
        return change, [TransitionEvent(tenant_id, t) for t in made]

    events: list[TransitionEvent] = commit_scopes(
        store, {tenant_id: []}, compute, now, known=[tenant_id]
    )[tenant_id]
    return events
