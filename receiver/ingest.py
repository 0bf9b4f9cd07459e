"""Apply Alertmanager notifications, operator actions and the passage of time to
tenant breakers, through the store's compare-and-set commits.

The policy lives in `breaker`; this module reads scopes, runs the policy, and
retries a scope whose version moved while it was thinking.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from receiver import jsontext
from receiver.alerts import PLATFORM_SCOPE, Alert, Kind, Notification
from receiver.board import on_board
from receiver.breaker import (
    TransitionEvent,
    on_firing,
    on_resolved,
    tick,
    would_trip,
)
from receiver.causes import SharedCause
from receiver.config import Settings
from receiver.containment import release_victims
from receiver.guard import guard_cap
from receiver.store import Change, DeliveryRead, ScopeStore, Snapshot
from receiver.store.commit import commit_scopes
from receiver.store.pending import Pending
from receiver.store.slots import GuardRead, Slot
from receiver.tenants import Tier, is_valid_tenant_id, resolve_tier

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)
    transitions: list[TransitionEvent] = field(default_factory=list)
    watchdog: bool = False
    partial: bool = False
    """Alertmanager truncated the payload: some alerts never reached us."""
    alerts: list[tuple[str, Alert]] = field(default_factory=list)
    """Every valid alert with its scope, duplicates included."""
    fresh: set[str] = field(default_factory=set)
    """Delivery keys applied for the first time."""
    group_key: str = ""
    tiers: dict[str, Tier] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    """Tenants whose trip the blast-radius guard held back, with the reason."""
    board_unseen: bool | None = None
    """Whether the incident board had yet to see any of these alert states, when read."""


@dataclass
class ScopeOutcome:
    duplicates: int = 0
    applied: list[Alert] = field(default_factory=list)
    events: list[TransitionEvent] = field(default_factory=list)
    tier: Tier | None = None
    held: str | None = None


def _alert_record(alert: Alert, notification: Notification, now: float) -> str:
    return jsontext.dumps(
        {
            "status": alert.status,
            "labels": alert.labels,
            "annotations": alert.annotations,
            "startsAt": alert.starts_at,
            "endsAt": alert.ends_at,
            "generatorURL": alert.generator_url,
            "groupKey": notification.group_key,
            "receivedAt": now,
        }
    )


def _presume_slots(
    store: ScopeStore,
    settings: Settings,
    read: DeliveryRead | None,
    firing_keys: Mapping[str, set[str]],
    now: float,
) -> dict[str, Slot] | None:
    """Guard slots for every tenant this delivery would trip, in one round trip
    rather than one per tenant; None where the commit can take them itself. Slots a
    tenant ends up not needing are freed when breakers are committed (`commit_scopes`
    syncs slots with final states).

    On one Redis the commit takes a trip's slot (one round trip fewer) while the
    guard has room for every trip when read. With room for only some, the slots are
    asked for first: a refused trip would be computed and sent twice. With no room at
    all (a storm past the cap) every trip is refused as read, without asking: the
    counts were read in the delivery's first round trip, and a slot freed since goes
    to a held trip with the next sweep, as one freed any later does. A tenant that
    already holds its slot (taken before a commit still in flight) is asked for.

    Which tenants would trip depends on their breakers; while the guard has room
    even for every tenant with a firing isolation alert, or none at all for any of
    them, that is not needed, and a large delivery's breakers are computed as
    their read arrives (`DeliveryRead.stream`)."""
    guard = None if read is None else read.guard
    firing = [scope for scope, keys in firing_keys.items() if keys]
    decided, presumed = _as_read(store, settings, guard, firing)
    if decided:
        return presumed
    snapshots = {} if read is None else read.snapshots
    wanted = [
        scope
        for scope in firing
        if firing_keys[scope] - snapshots[scope].seen
        and would_trip(tick(snapshots[scope].breaker, now, settings.breaker)[0], settings.breaker)
    ]
    decided, presumed = _as_read(store, settings, guard, wanted)
    if decided:
        return presumed
    return store.slots.acquire_many(wanted, settings.max_isolated_percent, now)


def _as_read(
    store: ScopeStore, settings: Settings, guard: GuardRead | None, trips: Sequence[str]
) -> tuple[bool, dict[str, Slot] | None]:
    """Whether the guard's counts as read settle these trips, and `_presume_slots`'
    answer if they do: None (the commit takes the slots) or every trip refused."""
    if not store.commits_slots or guard is None:
        return False, None
    cap = guard_cap(guard.known, settings.max_isolated_percent)
    if guard.held + len(trips) <= cap:
        return True, None
    if guard.held >= cap and guard.holding.isdisjoint(trips):
        return True, dict.fromkeys(trips, Slot(False, guard.held, guard.known, cap))
    return False, None


def _invalid(alert: Alert, settings: Settings, now: float) -> str | None:
    """Why an alert that passed the schema cannot be applied, if it cannot."""
    tenant_id = alert.tenant_id
    if tenant_id is not None and not is_valid_tenant_id(tenant_id):
        return "invalid tenant_id label"
    ahead = settings.max_alert_future_s
    if alert.starts_at_s > now + ahead:
        return f"startsAt more than {ahead:g}s ahead of the receiver's clock"
    if alert.starts_at_s < now - settings.max_alert_age_s:
        return f"startsAt more than {settings.max_alert_age_s:g}s before the receiver's clock"
    ends = alert.ends_at_s
    if not alert.firing and ends is not None and ends > now + ahead:
        return f"endsAt more than {ahead:g}s ahead of the receiver's clock"
    return None


def _state_time(alert: Alert, now: float) -> tuple[float, int]:
    """When an alert state began: a firing one at its start, a resolved one at its end
    (a resolution wins a tie with the firing it ends). Of two states of one alert in
    one payload only the later is applied, so the breaker and the stored record agree."""
    if alert.firing:
        return alert.starts_at_s, 0
    return (alert.ends_at_s if alert.ends_at_s is not None else now), 1


def _event_time(alert: Alert, now: float) -> float:
    if alert.firing or alert.ends_at_s is None:
        return now
    return min(alert.ends_at_s, now)


def ingest(
    notification: Notification,
    store: ScopeStore,
    settings: Settings,
    registry: Mapping[str, Tier],
    now: float,
    pending: Pending | None = None,
) -> IngestResult:
    """Apply one webhook delivery. Repeated deliveries of an alert state change nothing.
    With `pending`, the writes that follow the breakers wait there for the caller's
    next round trip (`commit_scopes`)."""
    result = IngestResult(
        partial=notification.truncated_alerts > 0, group_key=notification.group_key
    )
    breaker_settings = settings.breaker
    by_scope: dict[str, list[Alert]] = {}
    result.rejected = list(notification.rejected)
    latest: dict[tuple[str, str], Alert] = {}
    for alert in notification.alerts:
        reason = _invalid(alert, settings, now)
        if reason is not None:
            result.rejected.append({"fingerprint": alert.fingerprint, "reason": reason})
            continue
        if alert.kind is Kind.WATCHDOG:
            result.watchdog = True
        key = (alert.tenant_id or PLATFORM_SCOPE, alert.fingerprint)
        known = latest.get(key)
        if known is None or _state_time(alert, now) >= _state_time(known, now):
            latest[key] = alert
        result.duplicates += known is not None
    for (scope, _), alert in latest.items():
        by_scope.setdefault(scope, []).append(alert)
    if result.rejected:
        log.warning(
            "rejected %d alerts: %s",
            len(result.rejected),
            "; ".join(sorted({r["reason"] for r in result.rejected}))[:500],
        )
    if result.watchdog:
        store.record_watchdog(now)
    # What the first read needs, in one pass over the alerts.
    alerts: list[tuple[str, Alert]] = []
    scopes: dict[str, list[str]] = {}
    firing_keys: dict[str, set[str]] = {}
    board_keys: list[str] = []
    causes: list[Alert] = []
    for scope, scope_alerts in by_scope.items():
        keys, firing = scopes.setdefault(scope, []), set()
        for alert in scope_alerts:
            delivery_key = alert.delivery_key
            alerts.append((scope, alert))
            keys.append(delivery_key)
            if alert.kind is Kind.ISOLATE and alert.firing:
                firing.add(delivery_key)
            if on_board(alert):
                board_keys.append(delivery_key)
            if alert.shared_cause:
                causes.append(alert)
        if scope != PLATFORM_SCOPE:
            firing_keys[scope] = firing
    tenants = list(firing_keys)
    if causes:
        store.causes.record(causes, now)
    shared: list[SharedCause] = []

    def shared_cause() -> SharedCause:
        """Read once per delivery, after this delivery's own causes were recorded."""
        if not shared:
            shared.append(store.causes.read(now))
        return shared[0]

    held_by_cause: list[str | None] = []

    def shared_hold() -> str | None:
        """Why the shared cause holds trips back, if it does: the same for every
        tenant of the delivery, so worked out once (a storm trips thousands)."""
        if not held_by_cause:
            held_by_cause.append(shared_cause().hold_reason(settings.shared_settle_s))
        return held_by_cause[0]

    # Indexed in the same round trip as the read: a repeat delivery writes nothing
    # else, and still puts back a tenant whose index entry Redis lost.
    read: DeliveryRead | None = None
    if scopes:
        # The guard's counts only where the commit may take a slot: a trip needs a
        # firing isolation alert, and a cluster asks for slots first anyway.
        trips = [tenant for tenant, keys in firing_keys.items() if keys]
        read = store.read_delivery(
            scopes,
            now,
            index=tenants,
            board_keys=board_keys,
            guard_for=trips if store.commits_slots and trips else None,
        )
        result.board_unseen = read.board_unseen
        shared.append(read.cause)
    presumed = _presume_slots(store, settings, read, firing_keys, now)
    in_commit = presumed is None
    slots: dict[str, Slot] = {} if presumed is None else presumed

    def hold(change: Change) -> str | None:
        """The blast-radius guard's reason to hold this trip back, if it refused a
        slot; a slot not yet asked for is asked for (with the commit, if it can)."""
        scope = change.scope
        if scope not in slots:
            if in_commit:
                change.slot = True
                return None
            slots[scope] = store.slots.acquire(scope, settings.max_isolated_percent, now)
        slot = slots[scope]
        if slot.granted:
            return None
        return (
            f"blast-radius guard: {slot.isolated} of {slot.known} known tenants already "
            f"isolated (cap {slot.cap}, {settings.max_isolated_percent:g}%)"
        )

    def compute(snapshot: Snapshot) -> tuple[Change | None, ScopeOutcome]:
        scope = snapshot.scope
        breaker, made = snapshot.breaker, []
        change = Change(scope=scope, expected_version=snapshot.version)
        outcome = ScopeOutcome()
        fresh: list[Alert] = []
        for alert in by_scope[scope]:
            key = alert.delivery_key
            if key in snapshot.seen or key in change.delivery_keys:
                outcome.duplicates += 1
                continue
            fresh.append(alert)
            change.delivery_keys.append(key)
            if not alert.firing:
                change.forget_keys.append(alert.firing_key)
                change.resolved.add(alert.fingerprint)
            else:
                change.resolved.discard(alert.fingerprint)
            change.alerts[alert.fingerprint] = _alert_record(alert, notification, now)
            change.tier_label = alert.labels.get("tier", "") or change.tier_label
        outcome.applied = fresh
        # Event time: a resolution counts from when it happened (endsAt), so a
        # late delivery cannot make a recovered tenant look still failing.
        isolating = [a for a in fresh if a.kind is Kind.ISOLATE]
        if len(isolating) > 1:
            isolating.sort(key=lambda a: _event_time(a, now))
        for alert in isolating:
            at = _event_time(alert, now)
            breaker, step = tick(breaker, at, breaker_settings)
            made += step
            if not alert.firing:
                fingerprint = alert.fingerprint
                breaker, step = on_resolved(breaker, fingerprint, at, breaker_settings)
            else:
                reason = None
                if not alert.culprit and would_trip(breaker, breaker_settings):
                    reason = shared_hold() or hold(change)
                breaker, step = on_firing(
                    breaker, alert.fingerprint, at, breaker_settings, reason, alert.culprit
                )
                if reason is not None:
                    outcome.held = reason
            made += step
        breaker, step = tick(breaker, now, breaker_settings)
        made += step
        outcome.events = [TransitionEvent(scope, t) for t in made]
        if scope != PLATFORM_SCOPE:
            outcome.tier = resolve_tier(
                snapshot.tier_override,
                registry.get(scope),
                change.tier_label or snapshot.tier_label,
            ).tier
        if not change.delivery_keys and not made:
            return None, outcome
        if scope != PLATFORM_SCOPE:
            change.breaker = breaker
        change.transitions = made
        return change, outcome

    outcomes: dict[str, ScopeOutcome] = commit_scopes(
        store,
        scopes,
        compute,
        now,
        first_read=read.stream() if read is not None else {},
        taken=slots,
        later=pending,
        max_isolated_percent=settings.max_isolated_percent,
    )
    fresh, tiers, transitions = result.fresh, result.tiers, result.transitions
    for scope, outcome in outcomes.items():  # ten thousand for a storm's payload
        applied = outcome.applied
        result.accepted += len(applied)
        result.duplicates += outcome.duplicates
        if outcome.events:
            transitions += outcome.events
        for alert in applied:
            fresh.add(alert.delivery_key)
        if outcome.tier is not None:
            tiers[scope] = outcome.tier
        if outcome.held is not None:
            result.held[scope] = outcome.held
    if any(alert.firing for alert in causes):
        if pending is not None:
            pending.flush(store.client)  # before the victims' own, which are newer
        cause = shared_cause()
        window_s = settings.shared_release_window_s
        result.transitions += release_victims(store, breaker_settings, cause, window_s, now)
    result.alerts = alerts
    return result
