"""Correlate through the store: read the incident board, apply the rules of `board`,
and commit with a compare-and-set, retrying when another worker changed the board
meanwhile. Also the board's upkeep (retention) and operators' edits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from receiver import jsontext
from receiver.alerts import Kind
from receiver.board import Draft, Notice, Signals, apply_signals, settle, wanted
from receiver.breaker import ISOLATING
from receiver.config import Settings
from receiver.cost import tally_cost_per_hour, tenants_cost_per_hour
from receiver.incidents import Incident, expire_alerts
from receiver.metrics import BOARD_CONFLICTS
from receiver.notify.message import deferred_until
from receiver.store import ScopeStore
from receiver.store.incidents import Board, BoardChange, IncidentStore
from receiver.store.outbox import encode, kinds_of
from receiver.store.outbox import members as outbox_members
from receiver.store.pending import Pending
from receiver.store.retry import CommitConflict, attempts
from receiver.tenants import Tier, resolve_tier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Posted:
    notices: list[Notice]
    """Everything the change noticed, for the logs."""
    queued: bool
    """Whether any went to the outbox (the others were deferred to a later update)."""


def draft_of(board: Board, settings: Settings, now: float) -> Draft:
    return Draft(board.fields, board.incidents, board.seen, settings, now)


def board_change(draft: Draft, board: Board) -> BoardChange:
    """What one attempt writes: the fields it moved, the open list, the delivery keys
    it applied, the incidents it changed, and their notices: for the outbox, or,
    tenant-level ones of an incident that sent a message within the update interval,
    straight to its deferred update (the drain would only defer them)."""
    fields = {**draft.fields, "open": jsontext.dumps(draft.open_ids)}
    interval = draft.settings.notify.update_interval_s
    deferred: dict[str, tuple[set[str], float]] = {}
    for incident_id, members in outbox_members(draft.notices).items():
        due = deferred_until(
            kinds_of(members), board.last_sent.get(incident_id), draft.now, interval
        )
        if due is not None and incident_id in draft.changed:
            deferred[incident_id] = (members, due)
    return BoardChange(
        board.version,
        fields=fields,
        delivery_keys=draft.delivery_keys,
        outbox=encode(n for n in draft.notices if n.incident_id not in deferred),
        put={i: draft.open[i] for i in draft.changed},
        deferred=deferred,
    )


def _costs(
    draft: Draft,
    store: ScopeStore,
    settings: Settings,
    registry: Mapping[str, Tier],
    resolved: Mapping[str, Tier],
) -> None:
    """Per-hour cost of each changed incident; the every-known-tenant comparison is
    taken when an incident opens and when it resolves (it walks every tenant).
    `resolved` holds tiers this delivery already resolved, so they are not read again."""
    everyone: float | None = None
    hourly = settings.tier_hourly_cost
    for incident_id in draft.changed:
        incident = draft.open[incident_id]
        incident.cost_per_hour = tally_cost_per_hour(incident.tier_counts, hourly)
        incident.victims_cost_per_hour = tally_cost_per_hour(incident.victim_tiers, hourly)
        if incident_id in draft.created or not incident.is_open:
            if everyone is None:
                tiers = all_tiers(store, registry, resolved).values()
                everyone = tenants_cost_per_hour(tiers, settings.tier_hourly_cost)
            incident.all_tenants_cost_per_hour = everyone


def all_tiers(
    store: ScopeStore, registry: Mapping[str, Tier], resolved: Mapping[str, Tier] | None = None
) -> dict[str, Tier]:
    """Every known tenant's tier; those in `resolved` are taken from there."""
    resolved = resolved or {}
    tiers: dict[str, Tier] = {}
    for batch in store.iter_known_tenants():
        unread = []
        for tenant_id in batch:
            if tenant_id in resolved:
                tiers[tenant_id] = resolved[tenant_id]
            else:
                unread.append(tenant_id)
        for tenant_id, (override, label) in store.tier_fields(unread).items():
            tiers[tenant_id] = resolve_tier(override, registry.get(tenant_id), label).tier
    return tiers


def update(
    incidents: IncidentStore,
    store: ScopeStore,
    settings: Settings,
    registry: Mapping[str, Tier],
    signals: Signals,
    now: float,
    tidy: bool = False,
    pending: Pending | None = None,
) -> Posted:
    """Apply signals to the incident board; with `tidy`, also expire and settle. The
    board read carries the writes left `pending`, if it happens."""
    keys = signals.board_keys()
    unseen = signals.board_unseen
    if unseen is None:
        unseen = incidents.unseen(keys, now)
    if not (tidy or signals.held or signals.transitions or unseen):
        return Posted(
            [], queued=False
        )  # a repeat of what the board already has: skip reading incidents
    signals = replace(signals, opened_at=_opened_before(store, signals, now))
    with incidents.turn(lazy=True) as turn:
        for attempt in attempts():
            if attempt:
                BOARD_CONFLICTS.inc()
            board = incidents.board(
                now, delivery_keys=keys, wanted=wanted(signals), turn=turn, pending=pending
            )
            draft = draft_of(board, settings, now)
            isolated = store.slots.isolated_view()
            isolated.prefetch([s for s, a in signals.alerts if a.delivery_key not in signals.fresh])
            apply_signals(draft, signals, isolated)
            if tidy:
                for incident in draft.open.values():
                    if expire_alerts(incident, now, settings.incidents.alert_timeout_s):
                        draft.touch(incident)
                settle(draft, isolated, candidates=list(draft.open))
            if not draft.changed:
                return Posted([], queued=False)
            _costs(draft, store, settings, registry, signals.tiers)
            change = board_change(draft, board)
            if incidents.commit(change, now, turn):
                return Posted(draft.notices, queued=bool(change.outbox))
    raise CommitConflict("incident board still contended")


def _opened_before(store: ScopeStore, signals: Signals, now: float) -> dict[str, float]:
    """Tenants whose firing isolation alert the breakers had already applied (a retried
    delivery) and whose breaker is open: when it opened. One read, and only then."""
    replayed = {
        scope
        for scope, alert in signals.alerts
        if alert.kind is Kind.ISOLATE and alert.firing and alert.delivery_key not in signals.fresh
    }
    if not replayed:
        return {}
    snapshots = store.read({tenant: [] for tenant in sorted(replayed)}, now)
    return {
        tenant: snapshot.breaker.opened_at
        for tenant, snapshot in snapshots.items()
        if snapshot.breaker.state in ISOLATING and snapshot.breaker.opened_at is not None
    }


def prune(incidents: IncidentStore, settings: Settings, now: float) -> int:
    """Delete resolved incidents older than the retention, keeping indexes consistent."""
    ids = incidents.resolved_before(now - settings.incidents.retention_s)
    if not ids:
        return 0
    for _ in attempts():
        board = incidents.board(now)
        if incidents.commit(BoardChange(board.version, delete=ids), now):
            return len(ids)
    raise CommitConflict("incident board still contended")


def edit(
    incidents: IncidentStore,
    incident_id: str,
    change: Callable[[Incident], list[Notice]],
    now: float,
) -> tuple[Incident, list[Notice]] | None:
    """Apply an operator's change to one incident; None if there is no such incident."""
    for _ in attempts():
        board = incidents.board(now, extra_ids=[incident_id])
        incident = board.incidents.get(incident_id)
        if incident is None:
            return None
        notices = change(incident)
        open_ids = [i for i, inc in board.incidents.items() if inc.is_open and i in board.open_ids]
        fields = {"open": jsontext.dumps(sorted(open_ids))}
        outbox = encode(notices)
        change_ = BoardChange(board.version, fields, outbox=outbox, put={incident_id: incident})
        if incidents.commit(change_, now):
            return incident, notices
    raise CommitConflict("incident board still contended")
