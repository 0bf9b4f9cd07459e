"""Correlate through the store: read the incident board, apply the rules of `board`,
and commit with a compare-and-set, retrying when another worker changed the board
meanwhile. Also the board's upkeep (retention) and operators' edits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from receiver import jsontext
from receiver.alerts import Kind
from receiver.board import Draft, Notice, Signals, apply_signals, settle, wanted
from receiver.breaker import ISOLATING
from receiver.config import Settings
from receiver.cost import tally_cost_per_hour, tenants_cost_per_hour
from receiver.incidents import Incident, expire_alerts
from receiver.metrics import BOARD_CONFLICTS, BOARD_HANDOFFS
from receiver.notify.message import deferred_until
from receiver.store import ScopeStore, handoff
from receiver.store.incidents import Board, BoardChange, IncidentStore, Turn
from receiver.store.outbox import encode, kinds_of
from receiver.store.outbox import members as outbox_members
from receiver.store.pending import Pending
from receiver.store.retry import CommitConflict, attempts
from receiver.tenants import Tier, resolve_tier

log = logging.getLogger(__name__)
HANDOFF_MAX_ALERTS = 100
"""A delivery of more alerts than this waits for the board's turn rather than leave a
hand-off that large (Alertmanager's per-tenant groups carry a few)."""
DRAIN_S = 0.2
"""How long the turn's holder goes on applying hand-offs after its own change, before
giving the turn back (to the next delivery, or the sweep) with any still waiting."""


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
    hand_off: bool = False,
    meanwhile: Callable[[], None] | None = None,
) -> Posted:
    """Apply signals to the incident board; with `tidy`, also expire and settle. The
    board read carries the writes left `pending`, if it happens.

    Whoever holds the board's turn also applies the signals other deliveries left
    there (the hand-off list), a batch per change, for up to `DRAIN_S`. With
    `hand_off`, a delivery that finds the turn held leaves its signals there and
    returns at once, noticing nothing: under a burst one process applies many joins
    in one change instead of each taking its turn. `meanwhile`, if given, runs
    while Redis applies the first change this call commits, if it commits one."""
    keys = signals.board_keys()
    unseen = signals.board_unseen
    if unseen is None:
        unseen = incidents.unseen(keys, now)
    if not (tidy or signals.held or signals.transitions or unseen):
        return Posted(
            [], queued=False
        )  # a repeat of what the board already has: skip reading incidents
    signals = replace(signals, opened_at=_opened_before(store, signals, now))
    small = len(signals.alerts) <= HANDOFF_MAX_ALERTS
    given = handoff.encode(signals) if hand_off and small else ""
    notices: list[Notice] = []
    queued = False
    with incidents.turn(lazy=True, hand_off=given) as turn:
        until = time.monotonic() + DRAIN_S
        own: Signals | None = signals
        while True:
            posted = _change(
                incidents, store, settings, registry, own, now, tidy, pending, turn, meanwhile
            )
            if turn.handed:
                BOARD_HANDOFFS.inc()
                return posted
            notices += posted.notices
            queued = queued or posted.queued
            if not turn.waiting or time.monotonic() >= until:
                return Posted(notices, queued)
            own, tidy, pending, meanwhile = None, False, None, None


def _change(
    incidents: IncidentStore,
    store: ScopeStore,
    settings: Settings,
    registry: Mapping[str, Tier],
    own: Signals | None,
    now: float,
    tidy: bool,
    pending: Pending | None,
    turn: Turn,
    meanwhile: Callable[[], None] | None = None,
) -> Posted:
    """One board change: `own` signals (if any) after the hand-offs waiting, with the
    turn (taken by the first read, if free). A change that lost the compare-and-set
    reads the hand-offs again: a holder that took over an expired turn may have
    applied them."""
    mine = [own] if own is not None else []
    for attempt in attempts():
        if attempt:
            BOARD_CONFLICTS.inc()
        board = _read(incidents, mine, now, turn, pending, handoffs=True)
        if turn.handed:
            return Posted([], queued=False)
        batch, taken = _decoded(board.handoffs), len(board.handoffs)
        if taken:
            # Read again with what they name, under the turn now held.
            board = _read(incidents, [*batch, *mine], now, turn)
        pending = None  # carried by the first read
        applying = [*batch, *mine]
        draft = draft_of(board, settings, now)
        isolated = store.slots.isolated_view()
        tiers: dict[str, Tier] = {}
        isolated.prefetch(
            [scope for s in applying for scope, a in s.alerts if a.delivery_key not in s.fresh]
        )
        for s in applying:
            apply_signals(draft, s, isolated)
            tiers.update(s.tiers)
        if tidy:
            for incident in draft.open.values():
                bound = incident.live_seen_from
                expired = expire_alerts(incident, now, settings.incidents.alert_timeout_s)
                if expired or incident.live_seen_from != bound:
                    draft.touch(incident)  # a moved bound is kept, or every sweep walks
            settle(draft, isolated, candidates=list(draft.open))
        if not draft.changed and not taken:
            turn.waiting = 0  # nothing committed: none waits on this change
            return Posted([], queued=False)
        _costs(draft, store, settings, registry, tiers)
        change = board_change(draft, board)
        if incidents.commit(change, now, turn, handoffs=taken, keep=True, meanwhile=meanwhile):
            return Posted(draft.notices, queued=bool(change.outbox))
        meanwhile = None  # it ran
    raise CommitConflict("incident board still contended")


def _read(
    incidents: IncidentStore,
    applying: Sequence[Signals],
    now: float,
    turn: Turn,
    pending: Pending | None = None,
    handoffs: bool = False,
) -> Board:
    return incidents.board(
        now,
        delivery_keys=[key for s in applying for key in s.board_keys()],
        wanted=_wanted_all(applying),
        turn=turn,
        pending=pending,
        handoffs=handoffs,
    )


def _wanted_all(applying: Sequence[Signals]) -> dict[str, list[str]]:
    """`wanted` of several deliveries' signals together."""
    merged: dict[str, list[str]] = {}
    for s in applying:
        for part, names in wanted(s).items():
            merged.setdefault(part, []).extend(names)
    return merged


def _decoded(texts: Sequence[str]) -> list[Signals]:
    """The hand-offs that decode; one that does not is logged and dropped (it is taken
    off the list with the rest)."""
    batch = []
    for text in texts:
        try:
            batch.append(handoff.decode(text))
        except ValueError as exc:
            log.error("dropped an unreadable board hand-off: %s", exc)
    return batch


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
